// Which kernels OpenBLAS (the BLAS of Debian's LibTorch) runs, and restarting a program on better ones.
//
// OpenBLAS picks its kernels by the CPU's model number when it loads. A model its table does not
// know (a newer CPU, or a VM reporting a generic "Intel Xeon Processor", as CI's does) gets
// Prescott's SSE3 kernels: Linear layers ran 4.5x slower than on its SkylakeX kernels here. Only
// OPENBLAS_CORETYPE, read when the library loads, chooses them by name, so a program that wants
// them must start again with it set.
#pragma once

#include <string>

namespace shrink::core {

// The kernels OpenBLAS loaded ("Prescott", "SkylakeX"); "" when LibTorch's BLAS is not OpenBLAS
// (the PyPI wheels' MKL chooses by CPU features itself).
std::string openblas_core();

// The OpenBLAS kernels this CPU runs best within isa_cap(): "SkylakeX" (AVX-512), "Haswell"
// (AVX2 + FMA), or "" (none of OpenBLAS's own choices is beaten).
std::string openblas_core_for_this_cpu();

// The width in bits of the vectors OpenBLAS's kernels of this name use: 512 (SkylakeX, Cooperlake,
// SapphireRapids), 256 (Haswell, Zen and the AVX2 AMD cores), else 128 (Prescott to Sandybridge).
int openblas_vector_bits(const std::string& core);

// What to ask OpenBLAS for when it loaded `loaded` on a CPU whose best are `for_cpu`: `for_cpu`
// where its vectors are wider, else "".
std::string openblas_core_to_ask_for(const std::string& loaded, const std::string& for_cpu);

// The kernels to ask OpenBLAS for: openblas_core_for_this_cpu() where the loaded ones use a narrower
// vector unit (Prescott's SSE3 on an AVX-512 CPU), the user set no OPENBLAS_CORETYPE, and this
// process is not already such a restart; "" otherwise.
std::string better_openblas_core();

// For an executable's main, before anything else: when better_openblas_core() names kernels,
// executes the program again (same process id, arguments and environment) with OPENBLAS_CORETYPE
// set to them. Returns when there is nothing to do, or when the restart could not be made (the
// program then runs on the kernels it has, as before).
void restart_on_better_blas_kernels(char** argv);

}  // namespace shrink::core
