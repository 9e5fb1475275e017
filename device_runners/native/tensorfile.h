// The tensor file (device_runners/tensorfile.py) read and written without any library:
//   "HTF1", u32 N examples, u32 K tensors, K x (u32 dtype, u32 ndim, ndim x i64 dims), N*K raw tensors.
// Every check names what is wrong, because a bad inputs file is a user mistake, not a runner bug.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace harness {

struct TensorSpec {
  uint32_t dtype = 0;  // tensorfile.py code: 0 f32, 1 i64, 2 i32, 3 f16, 4 bool, 5 u8, 6 i8, 7 f64
  std::vector<int64_t> dims;
  size_t nbytes() const;
};

inline size_t dtype_size(uint32_t code) {
  static const size_t sizes[] = {4, 8, 4, 2, 1, 1, 1, 8};
  return code < 8 ? sizes[code] : 0;
}

inline const char* dtype_name(uint32_t code) {
  static const char* names[] = {"float32", "int64", "int32", "float16", "bool", "uint8", "int8", "float64"};
  return code < 8 ? names[code] : "unknown";
}

inline size_t TensorSpec::nbytes() const {
  size_t n = dtype_size(dtype);
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

struct TensorFile {
  std::vector<TensorSpec> specs;
  size_t num_examples = 0;
  std::vector<uint8_t> data;             // the whole file
  std::vector<std::vector<void*>> ptrs;  // ptrs[example][tensor] into data
};

// Returns "" on success, else a one-line reason.
inline std::string read_tensor_file(const std::string& path, TensorFile* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "cannot open inputs file " + path + ": " + std::strerror(errno);
  std::vector<uint8_t>& d = out->data;
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) d.insert(d.end(), buf, buf + got);
  std::fclose(f);

  size_t off = 0;
  auto take = [&](void* dst, size_t n) {
    if (off + n > d.size()) return false;
    std::memcpy(dst, d.data() + off, n);  // little-endian host assumed (x86_64, aarch64)
    off += n;
    return true;
  };
  char magic[4];
  uint32_t n = 0, k = 0;
  if (!take(magic, 4) || std::memcmp(magic, "HTF1", 4) != 0)
    return "inputs file " + path + " is not a tensor file (bad magic)";
  if (!take(&n, 4) || !take(&k, 4)) return "inputs file " + path + " is truncated in its header";
  if (n == 0) return "inputs file " + path + " holds no examples";
  if (k > 64) return "inputs file " + path + " claims " + std::to_string(k) + " tensors per example";
  for (uint32_t i = 0; i < k; ++i) {
    TensorSpec s;
    uint32_t ndim = 0;
    if (!take(&s.dtype, 4) || !take(&ndim, 4)) return "inputs file " + path + " is truncated in its header";
    if (dtype_size(s.dtype) == 0)
      return "inputs file " + path + ": tensor " + std::to_string(i) + " has unknown dtype code " +
             std::to_string(s.dtype);
    if (ndim > 16) return "inputs file " + path + ": tensor " + std::to_string(i) + " has " +
                          std::to_string(ndim) + " dims";
    s.dims.resize(ndim);
    for (uint32_t j = 0; j < ndim; ++j) {
      if (!take(&s.dims[j], 8)) return "inputs file " + path + " is truncated in its header";
      if (s.dims[j] < 0 || s.dims[j] > (int64_t{1} << 31))
        return "inputs file " + path + ": tensor " + std::to_string(i) + " has a bad dim " +
               std::to_string(s.dims[j]);
    }
    out->specs.push_back(s);
  }
  size_t per_example = 0;
  for (auto& s : out->specs) per_example += s.nbytes();
  size_t expected = off + per_example * n;
  if (d.size() != expected)
    return "inputs file " + path + " has " + std::to_string(d.size()) + " bytes, its header says " +
           std::to_string(expected) + " (truncated or not a tensor file)";
  out->num_examples = n;
  out->ptrs.resize(n);
  for (uint32_t e = 0; e < n; ++e)
    for (auto& s : out->specs) {
      out->ptrs[e].push_back(d.data() + off);
      off += s.nbytes();
    }
  return "";
}

// Writes examples[e][t] (raw bytes, same spec for every example) atomically; "" on success.
inline std::string write_tensor_file(const std::string& path, const std::vector<TensorSpec>& specs,
                                     const std::vector<std::vector<std::vector<uint8_t>>>& examples) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot write outputs file " + path + ": " + std::strerror(errno);
  uint32_t n = static_cast<uint32_t>(examples.size()), k = static_cast<uint32_t>(specs.size());
  bool ok = std::fwrite("HTF1", 1, 4, f) == 4 && std::fwrite(&n, 4, 1, f) == 1 && std::fwrite(&k, 4, 1, f) == 1;
  for (auto& s : specs) {
    uint32_t ndim = static_cast<uint32_t>(s.dims.size());
    ok = ok && std::fwrite(&s.dtype, 4, 1, f) == 1 && std::fwrite(&ndim, 4, 1, f) == 1;
    if (ndim) ok = ok && std::fwrite(s.dims.data(), 8, ndim, f) == ndim;
  }
  for (auto& ex : examples)
    for (auto& t : ex) ok = ok && (t.empty() || std::fwrite(t.data(), 1, t.size(), f) == t.size());
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) return "cannot write outputs file " + path;
  return "";
}

}  // namespace harness
