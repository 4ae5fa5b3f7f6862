// The HTML shell every shrink page shares: one stylesheet, and a policy that blocks any
// network access, so a report that renders has proven it is self-contained.
#pragma once

#include <string>

namespace shrink::report::html {

// A complete document: <title>, the stylesheet, a Content-Security-Policy of "nothing but inline
// styles", and `body` as given.
std::string page(const std::string& title, const std::string& body);

}  // namespace shrink::report::html
