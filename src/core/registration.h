// Self-registration: a compressor, a layer or a model transform registers itself from its own file
// while the program loads, so no central list names it. The library is linked whole (CMake's
// WHOLE_ARCHIVE), so a file whose only job is to register is never dropped by the linker.
#pragma once

// SHRINK_ON_LOAD(unique_name) { register_something(...); }
// Registries are function-local statics, so they exist before any registration reaches them.
#define SHRINK_ON_LOAD(name)                                                                 \
  static void shrink_on_load_##name();                                                       \
  [[maybe_unused]] static const bool shrink_loaded_##name = (shrink_on_load_##name(), true); \
  static void shrink_on_load_##name()
