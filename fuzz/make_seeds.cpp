// Writes each fuzz target's seed corpus from small files made the way shrink's tests make them:
// `fuzz_seeds DIR` fills DIR/<target>/ for every target.
#include <hdf5.h>
#include <torch/torch.h>

#include <fstream>

#include "core/atomic_file.h"
#include "data/idx_reader.h"
#include "io/safetensors_format.h"
#include "io/sparse_tensor.h"
#include "io/state_dict.h"

namespace fs = std::filesystem;
using namespace shrink;

namespace {

void put(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string part(const at::Tensor& t) {
  const auto c = t.defined() ? t.contiguous() : at::empty({0}, at::kByte);
  const size_t n = std::min<size_t>(c.numel() * c.element_size(), 0xffff);
  std::string s = {static_cast<char>(n & 0xff), static_cast<char>(n >> 8)};
  return s + std::string(static_cast<const char*>(c.data_ptr()), n);
}

std::string sparse_seed(const at::Tensor& t) {
  const auto s = io::encode(t);
  std::string out = {static_cast<char>(s.encoding), static_cast<char>(s.dtype == at::kFloat ? 1 : 0),
                     static_cast<char>(s.index_bytes), static_cast<char>(s.ptr_bytes),
                     static_cast<char>(s.shape.size())};
  for (int64_t d : s.shape) out.push_back(static_cast<char>(d));
  return out + part(s.values) + part(s.bitmask) + part(s.col_indices) + part(s.row_ptr);
}

void write_hdf5_dataset(const fs::path& path, bool deflate) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const auto images = torch::randint(0, 256, {16, 4, 4}, torch::kByte);
  const auto labels = torch::randint(0, 3, {16}, torch::kLong);
  for (const auto& [name, t, type] :
       {std::tuple{"images", images, H5T_NATIVE_UINT8}, std::tuple{"labels", labels, H5T_NATIVE_INT64}}) {
    std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (deflate) {
      H5Pset_chunk(dcpl, static_cast<int>(dims.size()), dims.data());
      H5Pset_deflate(dcpl, 6);
    }
    const hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr());
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  H5Fclose(file);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds SOURCE_DIR OUT_DIR\n");
    return 2;
  }
  const fs::path source = argv[1], out = argv[2];
  torch::manual_seed(0);
  for (const auto& e : fs::recursive_directory_iterator(source / "recipes")) {
    if (e.path().extension() == ".yaml") put(out / "recipe" / e.path().filename(), core::read_text_file(e.path()));
  }
  put(out / "recipe" / "synthetic-set.yaml",
      "name: s\nseed: 1\ndata: {format: synthetic, synthetic: {samples: 64, shape: [1, 4, 4]}}\n"
      "models:\n  m: {arch: convnet, channels: [2], fc: [4]}\nstages:\n  - train: {model: m, epochs: 1}\n"
      "  - prune: {model: m, sparsity: 0.5}\n#set\nstages.0.train.epochs=2\nmodels.m.fc=[3]\n");
  // User patterns (RE2), nested aliases and a model far past any memory budget: the hostile shapes
  // the loader refuses, as starting points for mutation.
  put(out / "recipe" / "patterns.yaml",
      "name: s\nseed: 1\ndata: {format: synthetic, synthetic: {samples: 64, shape: [16]}}\n"
      "models:\n  m: {arch: mlp, hidden: [8, 8]}\nstages:\n"
      "  - prune: {model: m, sparsity: 0.5, include: ['((((a|b)*)*c)*)', 'layers\\.[0-9]+\\.weight'], "
      "exclude: ['(?i)BIAS$']}\n  - quantize: {model: m, method: ptq_dynamic, exclude: ['^x{2,3}']}\n");
  put(out / "recipe" / "aliases.yaml",
      "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nname: s\nseed: 1\n"
      "data: {format: synthetic}\nmodels:\n  m: &m {arch: mlp, hidden: [8]}\n  n: *m\n"
      "stages:\n  - train: {model: m, epochs: 1}\n");
  put(out / "recipe" / "huge-model.yaml",
      "name: s\nseed: 1\ndata: {format: synthetic}\nmodels:\n  m: {arch: resnet, widths: [4096, 4096], blocks: 64}\n"
      "stages:\n  - train: {model: m, epochs: 1}\n");

  data::write_idx(out / "idx" / "images", torch::randint(0, 256, {3, 4, 4}, torch::kByte));
  data::write_idx(out / "idx" / "labels.gz", torch::randint(0, 10, {3}, torch::kByte));
  fs::rename(out / "idx" / "labels.gz", out / "idx" / "labels_gz");  // the target picks gzip by its first byte

  fs::create_directories(out / "hdf5");
  write_hdf5_dataset(out / "hdf5" / "plain", false);
  write_hdf5_dataset(out / "hdf5" / "deflated", true);

  // Dense, CSR, bitmask, mask-as-pattern and int8 entries: every encoding the readers decode.
  auto w = torch::randn({8, 16});
  const auto mask = (torch::rand({8, 16}) > 0.8).to(torch::kFloat);
  const io::StateDict sd = {{"fc.weight", w * mask, false},
                            {"fc.weight_mask", mask, true},
                            {"fc.bias", torch::randn({8}), false},
                            {"bn.num_batches_tracked", torch::tensor(int64_t{3}), true},
                            {"q.weight", torch::randint(-3, 4, {4, 32}, torch::kChar), false}};
  for (const char* ext : {"pt", "pth", "h5"}) {
    io::save_state_dict(out / "stage" / (std::string("m.") + ext), sd, {{"arch", "mlp"}});
    fs::create_directories(out / ext);
    fs::rename(out / "stage" / (std::string("m.") + ext), out / ext / "seed");
  }
  fs::remove_all(out / "stage");

  // A file as Hugging Face writes it: float, int64 and bf16 tensors, and an empty one.
  io::write_safetensors(out / "safetensors" / "seed",
                        {{"embeddings.word_embeddings.weight", torch::randn({6, 4}), false},
                         {"embeddings.position_ids", torch::arange(4, torch::kLong).view({1, 4}), false},
                         {"encoder.layer.0.output.dense.bias", torch::randn({4}).to(torch::kBFloat16), false},
                         {"empty", torch::zeros({0, 3}), false}});
  put(out / "sparse" / "csr", sparse_seed(w * (torch::rand({8, 16}) > 0.9).to(torch::kFloat)));
  put(out / "sparse" / "bitmask", sparse_seed(w * mask));
  put(out / "sparse" / "int8", sparse_seed(torch::randint(-2, 3, {4, 8}, torch::kChar)));
  std::printf("seeds written to %s\n", out.c_str());
  return 0;
}
