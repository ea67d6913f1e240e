#include "core/net/router.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/net/responder.h"

namespace fastest::net {
namespace {

std::vector<std::string> SplitPath(absl::string_view path) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    out.emplace_back(part);
  }
  return out;
}

}  // namespace

void Router::Add(absl::string_view method, absl::string_view pattern, Handler handler,
                 Execution execution) {
  Route route{std::string(method), SplitPath(pattern), std::move(handler), execution};
  route.wildcard = !route.segments.empty() && route.segments.back() == "*";
  routes_.push_back(std::move(route));
}

void Router::AddSync(absl::string_view method, absl::string_view pattern, SyncHandler handler,
                     Execution execution) {
  Add(
      method, pattern,
      [handler = std::move(handler)](const Request& req, std::shared_ptr<Responder> responder) {
        responder->Send(handler(req));
      },
      execution);
}

std::vector<std::pair<std::string, std::string>> Router::List() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(routes_.size());
  for (const Route& route : routes_) {
    out.emplace_back(route.method, "/" + absl::StrJoin(route.segments, "/"));
  }
  return out;
}

void Router::SetErrorFormatter(ErrorFormatter formatter) {
  error_formatter_ = std::move(formatter);
}

Response Router::Error(int http_status, absl::string_view code, absl::string_view message) const {
  return error_formatter_(http_status, code, message);
}

void Router::SetNotFound(SyncHandler handler) { not_found_ = std::move(handler); }

Response Router::NotFound(const Request& request) const {
  return not_found_ ? not_found_(request) : Error(404, "NOT_FOUND", "Route not found");
}

bool Router::MatchRoute(const Route& route, absl::Span<const absl::string_view> segments,
                        std::map<std::string, std::string>* params, int* score) {
  // Most routes fail on the segment count alone, before any comparison.
  if (route.wildcard ? segments.size() + 1 < route.segments.size()
                     : segments.size() != route.segments.size()) {
    return false;
  }
  // `params` null: only whether and how well the route matches (no allocation).
  int literal = 0;
  size_t i = 0;
  for (; i < route.segments.size(); ++i) {
    const std::string& pat = route.segments[i];
    if (pat == "*") {
      if (params != nullptr) {
        std::vector<absl::string_view> rest(segments.begin() + std::min(i, segments.size()),
                                            segments.end());
        (*params)["*"] = absl::StrJoin(rest, "/");
      }
      *score = literal;
      return true;
    }
    if (i >= segments.size()) return false;
    if (!pat.empty() && pat[0] == ':') {
      if (params != nullptr) (*params)[pat.substr(1)] = std::string(segments[i]);
    } else if (pat == segments[i]) {
      // Literal matches weigh more the earlier they are, so /jobs/next beats /jobs/:id.
      literal += 1 << (16 - std::min<size_t>(i, 15));
    } else {
      return false;
    }
  }
  if (i != segments.size()) return false;
  *score = literal;
  return true;
}

const Router::Route* Router::Match(absl::string_view method, absl::string_view path,
                                   std::map<std::string, std::string>* params,
                                   bool* path_matched) const {
  // Split without allocating for ordinary paths.
  absl::InlinedVector<absl::string_view, 16> segments;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    segments.push_back(part);
  }
  const Route* best = nullptr;
  int best_score = -1;
  *path_matched = false;
  for (const Route& route : routes_) {
    // Another method's route only matters for path_matched, which is already known.
    if (*path_matched && route.method != method) continue;
    int score = 0;
    if (!MatchRoute(route, segments, nullptr, &score)) continue;
    *path_matched = true;
    if (route.method != method) continue;
    if (score > best_score) {
      best_score = score;
      best = &route;
    }
  }
  if (best != nullptr) {
    params->clear();
    int score = 0;
    MatchRoute(*best, segments, params, &score);
  }
  return best;
}

}  // namespace fastest::net
