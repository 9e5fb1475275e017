// How the runner fails: one JSON error (also after a crash signal), the runtime's own reason attached.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <executorch/runtime/platform/platform.h>

#include "json.h"

namespace harness {

inline const char* g_result = nullptr;          // where an error (or a crash) is reported
inline const char* g_stage = "parsing flags";  // what the runner was doing, for that report
inline std::string g_runtime_error;  // the runtime's first error lines in this stage: what "InvalidArgument" meant
inline int g_runtime_errors = 0;

inline void stage(const char* what) {
  g_stage = what;
  std::fprintf(stderr, "@@harness-progress {\"stage\": \"%s\"}\n", what);  // the harness shows it as it goes
  std::fflush(stderr);
  g_runtime_error.clear();
  g_runtime_errors = 0;
}

// The runtime's log goes to stderr as usual; its errors are also kept for the error JSON.
inline void emit_log(et_timestamp_t, et_pal_log_level_t level, const char* file, const char*, size_t line,
              const char* msg, size_t len) {
  const char* base = std::strrchr(file, '/');
  while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) --len;
  std::fprintf(stderr, "%c executorch:%s:%zu] %.*s\n", static_cast<char>(level), base ? base + 1 : file, line,
               static_cast<int>(len), msg);
  if ((level == kError || level == kFatal) && g_runtime_errors++ < 2)  // the root cause, then its context
    g_runtime_error += (g_runtime_error.empty() ? "" : "; ") + std::string(msg, len);
}

[[noreturn]] inline void fail(std::string msg) {
  if (!g_runtime_error.empty() && msg.find(g_runtime_error) == std::string::npos)
    msg += " [runtime: " + g_runtime_error + "]";
  std::fprintf(stderr, "harness_runner: error: %s\n", msg.c_str());
  if (g_result)
    harness::write_text_file(g_result, harness::JsonObject().str("runner", "native").str("error", msg)
                                           .str("stage", g_stage).text() + "\n");
  std::exit(1);
}

// A damaged program can crash inside the runtime or a delegate: still leave an error JSON behind.
inline void on_crash(int sig) {
  if (g_result) {
    int fd = open(g_result, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      const char* parts[] = {"{\"runner\": \"native\", \"error\": \"runner crashed (", strsignal(sig),
                             ") while ", g_stage, "\", \"stage\": \"", g_stage, "\"}\n"};
      for (const char* p : parts) (void)!write(fd, p, std::strlen(p));
      close(fd);
    }
  }
  const char* msg = "harness_runner: error: crashed with a fatal signal\n";
  (void)!write(2, msg, std::strlen(msg));
  _exit(128 + sig);
}

}  // namespace harness
