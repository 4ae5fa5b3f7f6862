// A thread-safe map that plug-ins add to once per key (transforms, report readers, layer
// planners): adding a key twice is a UsageError naming it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace shrink::core {

template <class Value, class Key = std::string>
class KeyedRegistry {
 public:
  // `what` names an entry in messages ("model transform").
  explicit KeyedRegistry(std::string what) : what_(std::move(what)) {}

  void add(const Key& key, Value value) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.count(key)) throw UsageError(cat(what_, " '", name_of(key), "' is registered already"));
    entries_.emplace(key, std::move(value));
  }

  std::optional<Value> find(const Key& key) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  // Keys and values in key order.
  std::vector<std::pair<Key, Value>> entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {entries_.begin(), entries_.end()};
  }

 private:
  template <class K>
  static std::string name_of(const K& key) {
    if constexpr (std::is_convertible_v<K, std::string>) {
      return key;
    } else {
      return key.name();  // std::type_index
    }
  }

  std::string what_;
  mutable std::mutex mutex_;
  std::map<Key, Value> entries_;
};

}  // namespace shrink::core
