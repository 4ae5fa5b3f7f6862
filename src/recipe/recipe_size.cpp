// Counting a recipe's YAML nodes, aliases expanded, from the parser's events.
#include "recipe/recipe_size.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/format.h"

namespace shrink::recipe {

namespace {

// An anchor's size is known when its node ends; an alias adds that size. Sizes are capped at the
// limit so that nested aliases (the "billion laughs") cannot overflow the count.
class NodeCounter : public YAML::EventHandler {
 public:
  explicit NodeCounter(const std::filesystem::path& path) : path_(path) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(mark, anchor < sizes_.size() ? sizes_[anchor] : 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    int64_t count_at_start;
  };

  void add(const YAML::Mark& mark, int64_t n) {
    count_ = std::min(count_ + n, RecipeLimits::kMaxNodes + 1);
    if (count_ > RecipeLimits::kMaxNodes) {
      throw core::RecipeError({{path_.string(), mark.line + 1, mark.column + 1, "",
                                core::cat("the recipe has more than ", RecipeLimits::kMaxNodes,
                                          " YAML nodes (an alias counts as the nodes it repeats); shrink refuses "
                                          "recipes past that size")}});
    }
  }
  void record(YAML::anchor_t anchor, int64_t size) {
    if (anchor == YAML::NullAnchor) return;
    if (sizes_.size() <= anchor) sizes_.resize(anchor + 1, 1);
    sizes_[anchor] = size;
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, 1);
    record(anchor, 1);
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, 1);
    open_.push_back({anchor, count_ - 1});
  }
  void close() {
    const Open o = open_.back();
    open_.pop_back();
    record(o.anchor, count_ - o.count_at_start);
  }

  std::filesystem::path path_;
  int64_t count_ = 0;
  std::vector<int64_t> sizes_;  // by anchor id (yaml-cpp numbers anchors from 1 in document order)
  std::vector<Open> open_;
};

}  // namespace

void check_recipe_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (!ec && bytes > static_cast<uintmax_t>(RecipeLimits::kMaxBytes)) {
    throw core::UsageError(core::cat(path.string(), ": the recipe is ", bytes, " bytes, over the limit of ",
                                     RecipeLimits::kMaxBytes, " bytes (4 MiB) for a recipe"));
  }
}

void check_recipe_size(const std::string& text, const std::filesystem::path& path) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  NodeCounter counter(path);
  try {
    while (parser.HandleNextDocument(counter)) {
    }
  } catch (const YAML::ParserException&) {
    // The loader reports syntax errors with their place; counting stops at the first.
  }
}

}  // namespace shrink::recipe
