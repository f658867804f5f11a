#include "http/openapi.h"

#include <algorithm>
#include <cctype>

#include "http/assets.h"

namespace app {

const nlohmann::json& openapi_document() {
  static const nlohmann::json doc = nlohmann::json::parse(assets::openapi_json());
  return doc;
}

std::string path_shape(std::string_view p) {
  std::string out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      out += p[++i];
    } else if (c == '(' || c == '{') {
      const char open = c;
      const char close = c == '(' ? ')' : '}';
      int depth = 1;
      while (++i < p.size() && depth > 0) {
        if (p[i] == '\\') {
          ++i;
        } else if (p[i] == open) {
          ++depth;
        } else if (p[i] == close) {
          --depth;
        }
      }
      --i;
      out += "{}";
    } else {
      out += c;
    }
  }
  return out;
}

std::string route_label(const std::string& method, const std::string& pattern) {
  const std::string shape = path_shape(pattern);
  std::string lower = method;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  std::string any_method;
  for (const auto& [path, item] : openapi_document().at("paths").items()) {
    if (path_shape(path) != shape) continue;
    if (item.contains(lower)) return path;
    if (any_method.empty()) any_method = path;
  }
  return any_method.empty() ? shape : any_method;
}

}  // namespace app
