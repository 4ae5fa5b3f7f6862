// HTML escaping and the page shell.
#include "report/html.h"

#include "core/format.h"

namespace shrink::report::html {

std::string page(const std::string& title, const std::string& body) {
  static const char* kStyle = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dde1e8; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #dde1e8; padding: 3px 8px; text-align: right; } th { background: #f3f5f8; }
td:first-child, th:first-child, td.l { text-align: left; }
.meta { color: #5a6270; } .warn { color: #a33; font-weight: 600; } .front { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } .charts svg { border: 1px solid #e6e9ee; background: #fff; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
)";
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         core::html_escape(title) + "</title>\n<style>" + kStyle + "</style></head>\n<body>\n" + body +
         "\n</body></html>\n";
}

}  // namespace shrink::report::html
