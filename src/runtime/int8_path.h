// The instruction paths of shrink's own int8 kernels (Conv2d, whose tiles run Linear layers too): each kernel has a
// scalar reference and a fast path per path, and tests run every path this CPU has against the reference.
#pragma once

namespace shrink::runtime {

enum class Int8Path {
  kReference,   // plain C++: the specification
  kAvx2,        // u8 and s8 widened to s16, pairwise multiply-add into s32 (no saturation)
  kAvxVnni,     // AVX-VNNI (VEX, 256 bits): u8 × s8 four at a time into s32
  kAvx512Vnni,  // AVX-512 VNNI (512 bits): the same, sixteen lanes
};

// Whether this CPU (under SHRINK_MAX_CPU_ISA's cap) can run `path`.
bool int8_path_available(Int8Path path);
// The fastest path available; kReference where no vector path is.
Int8Path best_int8_path();
// "reference", "avx2", "avx_vnni", "avx512_vnni": for test messages and benchmark labels.
const char* int8_path_name(Int8Path path);

}  // namespace shrink::runtime
