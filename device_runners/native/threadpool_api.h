// The ExecuTorch wheel ships libexecutorch_threadpool.so but not its threadpool.h: declare the two calls we use.
// Non-virtual member functions only, so the class layout does not matter to us.
#pragma once

#include <cstddef>
#include <cstdint>

namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool
