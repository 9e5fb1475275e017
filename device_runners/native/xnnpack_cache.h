// --xnnpack-cache: XNNPACK's packed weights kept in a file. The first run packs them and writes the file; later runs
// mmap it, skipping the packing and never reading the unpacked weights (fp32 MobileBERT: load 58 -> 14 ms, RSS after
// load 88 -> 10 MiB; benchmarks/results/runner_vs_python.md). Entries are keyed by the weights' content hash, so a
// file shared by programs never serves the wrong weights; it only grows.
#pragma once

#include <sys/stat.h>

#include <string>

#include <executorch/runtime/backend/backend_options_map.h>
#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/backend/options.h>

namespace harness {

class XnnpackCache {
 public:
  XnnpackCache() = default;
  XnnpackCache(const XnnpackCache&) = delete;  // map_ points into options_
  XnnpackCache& operator=(const XnnpackCache&) = delete;
  // "" on success, else why `path` cannot be used. An empty path leaves the cache off.
  std::string configure(const std::string& path) {
    path_ = path;
    if (path_.empty()) return "";
    if (path_.size() >= executorch::runtime::kMaxOptionValueLength)
      return "--xnnpack-cache path is too long (at most " +
             std::to_string(executorch::runtime::kMaxOptionValueLength - 1) + " characters): " + path_;
    reused_ = file_bytes() > 0;
    // XNNPACKBackend.h's keys (the wheel ships no XNNPACK headers); the path must come per load, not globally.
    options_.set_option("weight_cache_enabled", true);
    options_.set_option("packed_cache_path", path_.c_str());
    map_.set_options("XnnpackBackend", options_.view());
    return "";
  }
  const executorch::runtime::LoadBackendOptionsMap* load_options() const { return path_.empty() ? nullptr : &map_; }

  // After load_method: on a first run, write the file. "" on success, else why not.
  std::string finish() {
    if (path_.empty() || reused_) return "";
    executorch::runtime::BackendOptions<1> save;
    save.set_option("save_weight_cache_on_disk", true);
    executorch::runtime::Span<executorch::runtime::BackendOption> view = save.view();
    // XNNPACK only logs a file it cannot open and packs to the heap instead: check the file is really there.
    if (executorch::runtime::set_option("XnnpackBackend", view) != executorch::runtime::Error::Ok ||
        file_bytes() <= 0)
      return "cannot write the XNNPACK packed weights to --xnnpack-cache " + path_ +
             " (does its directory exist and is it writable?)";
    return "";
  }
  const std::string& path() const { return path_; }
  const char* state() const { return reused_ ? "reused" : "written"; }

 private:
  long long file_bytes() const {
    struct stat st;
    return stat(path_.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
  }
  std::string path_;
  bool reused_ = false;
  executorch::runtime::BackendOptions<2> options_;
  executorch::runtime::LoadBackendOptionsMap map_;
};

}  // namespace harness
