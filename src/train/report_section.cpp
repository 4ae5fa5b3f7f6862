// The registry of report section readers.
#include "train/report_section.h"

#include "core/keyed_registry.h"

namespace shrink::train {

namespace {

core::KeyedRegistry<SectionReader>& section_readers() {
  static core::KeyedRegistry<SectionReader> r("report section");
  return r;
}

}  // namespace

void register_section_reader(const std::string& key, SectionReader read) {
  section_readers().add(key, std::move(read));
}

std::shared_ptr<const ReportSection> read_section(const std::string& key, const nlohmann::json& j) {
  const auto read = section_readers().find(key);
  return read ? (*read)(j) : std::make_shared<RawSection>(key, j);
}

}  // namespace shrink::train
