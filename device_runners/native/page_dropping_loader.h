// A program loader that maps the whole .pte read-only once and can drop its resident pages while the method loads.
//
// XNNPACK packs every weight into its own memory while reading the unpacked weight from the program mapping, and
// the mapping's pages stay resident until all packing is done: the load peaks at the packed plus the unpacked
// weights (measured on fp32 MobileBERT: 169 MiB for a 93.5 MiB program). The pages are clean, read-only file pages,
// so MADV_DONTNEED only unmaps them: a later read faults them back in from the page cache with the same bytes.
// A helper thread drops them every few milliseconds during Program::load_method, so the unpacked weights are never
// resident all at once. PROT_READ guarantees nothing in the program can have been written (a write would fault).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <executorch/runtime/core/data_loader.h>
#include <executorch/runtime/core/error.h>
#include <executorch/runtime/core/freeable_buffer.h>
#include <executorch/runtime/core/result.h>

namespace harness {

class PageDroppingLoader final : public executorch::runtime::DataLoader {
 public:
  // "" on success, else why the file cannot be mapped.
  std::string open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "cannot open program " + path;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      return "program " + path + " is empty or unreadable";
    }
    size_ = static_cast<size_t>(st.st_size);
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return "cannot map program " + path;
    base_ = static_cast<const uint8_t*>(p);
    return "";
  }
  ~PageDroppingLoader() override {
    stop_dropping();
    if (base_) munmap(const_cast<uint8_t*>(base_), size_);
  }

  executorch::runtime::Result<executorch::runtime::FreeableBuffer> load(
      size_t offset, size_t size, const SegmentInfo&) const override {
    if (offset > size_ || size > size_ - offset) return executorch::runtime::Error::InvalidArgument;
    return executorch::runtime::FreeableBuffer(base_ + offset, size, nullptr);  // the mapping outlives the program
  }
  executorch::runtime::Result<size_t> size() const override { return size_; }

  // Start/stop the helper thread that drops the mapping's resident pages every `period`.
  void start_dropping(std::chrono::milliseconds period = std::chrono::milliseconds(2)) {
    running_ = true;
    dropper_ = std::thread([this, period] {
      while (running_.load(std::memory_order_relaxed)) {
        drop_resident();
        std::this_thread::sleep_for(period);
      }
    });
  }
  void stop_dropping() {
    if (!dropper_.joinable()) return;
    running_ = false;
    dropper_.join();
    drop_resident();  // what the last packing steps read
  }
  void drop_resident() const { madvise(const_cast<uint8_t*>(base_), size_, MADV_DONTNEED); }

 private:
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::atomic<bool> running_{false};
  std::thread dropper_;
};

}  // namespace harness
