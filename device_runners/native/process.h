// What the runner measures about its own process (memory) and how it pins itself (affinity).
#pragma once

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace harness {

// A "kB" field of /proc/self/status or smaps_rollup; -1 when unreadable (e.g. a sandbox without /proc).
inline long proc_kb(const char* file, const char* field) {
  FILE* f = std::fopen(file, "r");
  if (!f) return -1;
  char line[256];
  long value = -1;
  size_t n = std::strlen(field);
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      value = std::strtol(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return value;
}

// VmRSS (split into anonymous and file-backed pages) and VmHWM now, as a JSON object: the runner records one per
// stage, so a peak can be attributed (e.g. XNNPACK packing weights while the unpacked ones are still mapped).
inline std::string memory_snapshot_json() {
  const char* st = "/proc/self/status";
  return "{\"rss_kb\": " + std::to_string(proc_kb(st, "VmRSS")) + ", \"rss_anon_kb\": " +
         std::to_string(proc_kb(st, "RssAnon")) + ", \"rss_file_kb\": " + std::to_string(proc_kb(st, "RssFile")) +
         ", \"vmhwm_kb\": " + std::to_string(proc_kb(st, "VmHWM")) + "}";
}

inline long peak_rss_kb_getrusage() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
#if defined(__APPLE__)
  return ru.ru_maxrss / 1024;  // bytes on Darwin (iOS app)
#else
  return ru.ru_maxrss;  // kilobytes on Linux
#endif
}

#if defined(__APPLE__) && !defined(CPU_SETSIZE)
#define CPU_SETSIZE 1024
#endif

// "0,1", "4-7" or "0-1,6" -> core ids; empty on a malformed list.
inline std::vector<int> parse_cpu_list(const std::string& s) {
  std::vector<int> cpus;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(pos, end - pos);
    char* rest = nullptr;
    long lo = std::strtol(item.c_str(), &rest, 10);
    long hi = lo;
    if (rest == item.c_str()) return {};
    if (*rest == '-') {
      const char* p = rest + 1;
      hi = std::strtol(p, &rest, 10);
      if (rest == p) return {};
    }
    if (*rest != '\0' || lo < 0 || hi < lo || hi >= CPU_SETSIZE) return {};
    for (long c = lo; c <= hi; ++c) cpus.push_back(static_cast<int>(c));
    pos = end + 1;
  }
  return cpus;
}

// Pins this thread (and every thread it creates later, e.g. the XNNPACK pool); "" on success.
inline std::string set_affinity(const std::vector<int>& cpus) {
#if defined(__APPLE__)
  (void)cpus;
  return "iOS has no CPU affinity (the scheduler places threads on P and E cores)";
#else
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    return std::string("sched_setaffinity failed: ") + std::strerror(errno) + " (cores offline or absent?)";
  return "";
#endif
}

}  // namespace harness
