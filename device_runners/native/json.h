// A minimal JSON object writer: the runner emits one flat-ish object, so a full library is not worth shipping.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace harness {

// Length of the valid UTF-8 sequence at s[i], or 0: runtime messages can quote raw bytes of a damaged program.
inline size_t utf8_len(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  unsigned char c1 = static_cast<unsigned char>(s[i + 1]);  // no overlongs, surrogates or > U+10FFFF
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
    return 0;
  return n;
}

inline std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (size_t n = utf8_len(s, i)) {
      out.append(s, i, n);
      i += n - 1;
    } else {
      out += "\\ufffd";  // not UTF-8: keep the JSON valid
    }
  }
  return out + "\"";
}

inline std::string json_num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// Keys in insertion order; values are already-encoded JSON text.
class JsonObject {
 public:
  JsonObject& raw(const std::string& key, const std::string& encoded) {
    items_.emplace_back(key, encoded);
    return *this;
  }
  JsonObject& str(const std::string& key, const std::string& v) { return raw(key, json_str(v)); }
  JsonObject& num(const std::string& key, double v) { return raw(key, json_num(v)); }
  JsonObject& integer(const std::string& key, long long v) { return raw(key, std::to_string(v)); }
  JsonObject& boolean(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonObject& null(const std::string& key) { return raw(key, "null"); }
  std::string text() const {
    std::string out = "{";
    for (size_t i = 0; i < items_.size(); ++i)
      out += (i ? ", " : "") + json_str(items_[i].first) + ": " + items_[i].second;
    return out + "}";
  }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

template <typename T, typename F>
std::string json_list(const std::vector<T>& xs, F encode) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i) out += (i ? ", " : "") + encode(xs[i]);
  return out + "]";
}

inline bool write_text_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace harness
