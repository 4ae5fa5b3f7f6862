// Reader for the IDX format of the MNIST family, gzip-compressed or plain.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace shrink::data {

// Reads an unsigned-byte IDX file (magic 0x00000801..0x00000804) into a uint8 tensor of its
// dimensions. Magic, dimensions and byte counts are checked before any payload is allocated;
// a truncated, oversized or foreign file throws an Error naming the file and the problem.
at::Tensor read_idx(const std::filesystem::path& path);
// The dimensions the header declares, checked as read_idx checks them, without reading the
// payload: callers size what they will make of it before anything is allocated.
std::vector<int64_t> read_idx_shape(const std::filesystem::path& path);

// Writes a uint8 tensor as IDX (plain, or gzip when the name ends in .gz). Used by tests and tools.
void write_idx(const std::filesystem::path& path, const at::Tensor& data);

}  // namespace shrink::data
