// How the runner is stopped and how it tells how far it got.
//
// SIGINT/SIGTERM/SIGHUP (the harness stopping a run, adbd dropping a connection): before timing starts the runner
// leaves an "interrupted" error JSON and exits at once; once timing runs it finishes the current iteration and
// writes what it measured, marked partial. Progress goes to stderr as `@@harness-progress {json}` lines, about
// twice a second, which the harness streams from every transport.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "failure.h"

namespace harness {

inline volatile sig_atomic_t g_stop = 0;      // the signal that asked us to stop, once timing has started
inline volatile sig_atomic_t g_deferred = 0;  // 1 from the start of timing: stop after the current iteration

inline const char* signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "signal";
}

inline void on_stop(int sig) {
  if (g_deferred) {
    g_stop = sig;
    return;
  }
  if (g_result) {  // async-signal-safe: open/write/close only
    int fd = open(g_result, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      const char* parts[] = {"{\"runner\": \"native\", \"error\": \"interrupted by ", signal_name(sig), " while ",
                             g_stage, "\", \"interrupted\": \"", signal_name(sig), "\", \"stage\": \"", g_stage,
                             "\", \"latencies_ms\": []}\n"};
      for (const char* p : parts) (void)!write(fd, p, std::strlen(p));
      close(fd);
    }
  }
  _exit(128 + sig);
}

inline void install_stop_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

// `@@harness-progress {...}` at most every 0.5 s (and always when `force`): iterations done of at least `target`,
// seconds elapsed in this stage, and the --min-seconds the stage must last.
class Progress {
 public:
  void begin(const char* stage, long target, double min_seconds) {
    stage_ = stage, target_ = target, min_seconds_ = min_seconds;
    t0_ = last_ = std::chrono::steady_clock::now();
    tick(0, true);
  }
  void tick(long done, bool force = false) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    double elapsed = std::chrono::duration<double>(now - t0_).count();
    std::fprintf(stderr,
                 "@@harness-progress {\"stage\": \"%s\", \"done\": %ld, \"target\": %ld, \"elapsed_s\": %.2f, "
                 "\"min_seconds\": %g}\n",
                 stage_, done, target_, elapsed, min_seconds_);
    std::fflush(stderr);
  }

 private:
  const char* stage_ = "";
  long target_ = 0;
  double min_seconds_ = 0;
  std::chrono::steady_clock::time_point t0_, last_;
};

}  // namespace harness
