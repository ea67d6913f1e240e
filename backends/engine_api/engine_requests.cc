#include "backends/engine_api/engine_requests.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/encoding/percent_encoding.h"

namespace fastest::backends::engine_api {
namespace {

constexpr size_t kMaxMessage = 400;

std::map<std::string, std::string> LabelsFrom(const nlohmann::json& labels) {
  std::map<std::string, std::string> out;
  if (!labels.is_object()) return out;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

std::string StringField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string StripSlash(std::string name) {
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

}  // namespace

std::string UrlEncode(absl::string_view text) { return core::PercentEncode(text); }

bool IsValidContainerRef(absl::string_view ref) {
  if (ref.empty() || ref.size() > 128) return false;
  for (char c : ref) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

int CompareApiVersions(absl::string_view a, absl::string_view b) {
  std::vector<absl::string_view> pa = absl::StrSplit(a, '.');
  std::vector<absl::string_view> pb = absl::StrSplit(b, '.');
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    int x = 0, y = 0;
    if (i < pa.size() && !absl::SimpleAtoi(pa[i], &x)) x = 0;
    if (i < pb.size() && !absl::SimpleAtoi(pb[i], &y)) y = 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

nlohmann::json BuildCreateBody(const ContainerSpec& spec) {
  nlohmann::json body = nlohmann::json::object();
  body["Image"] = spec.image;
  if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
  nlohmann::json env = nlohmann::json::array();
  for (const auto& [key, value] : spec.env) env.push_back(absl::StrCat(key, "=", value));
  body["Env"] = std::move(env);
  body["Labels"] = spec.labels;  // std::map -> JSON object
  if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
  // No TTY and no stdin: logs come as multiplexed frames (LogDemuxer).
  body["Tty"] = false;
  body["OpenStdin"] = false;
  body["AttachStdin"] = false;
  body["AttachStdout"] = false;
  body["AttachStderr"] = false;

  nlohmann::json host = nlohmann::json::object();
  if (!spec.network_mode.empty()) host["NetworkMode"] = spec.network_mode;
  if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
  if (spec.memory_bytes > 0) host["Memory"] = spec.memory_bytes;
  if (spec.pids_limit > 0) host["PidsLimit"] = spec.pids_limit;
  if (spec.disk_bytes > 0) host["StorageOpt"] = {{"size", std::to_string(spec.disk_bytes)}};
  if (spec.memory_swap_bytes > 0) host["MemorySwap"] = spec.memory_swap_bytes;
  if (spec.readonly_rootfs) host["ReadonlyRootfs"] = true;
  if (!spec.cap_drop.empty()) host["CapDrop"] = spec.cap_drop;
  if (!spec.cap_add.empty()) host["CapAdd"] = spec.cap_add;
  if (!spec.security_opt.empty()) host["SecurityOpt"] = spec.security_opt;
  if (!spec.binds.empty()) host["Binds"] = spec.binds;
  if (!spec.tmpfs.empty()) host["Tmpfs"] = spec.tmpfs;
  if (!spec.runtime.empty()) host["Runtime"] = spec.runtime;
  host["Init"] = spec.init;
  host["AutoRemove"] = false;  // we read the exit code and logs before removing
  if (!spec.ulimits.empty()) {
    nlohmann::json ulimits = nlohmann::json::array();
    for (const Ulimit& u : spec.ulimits) {
      ulimits.push_back({{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
    }
    host["Ulimits"] = std::move(ulimits);
  }
  body["HostConfig"] = std::move(host);
  return body;
}

std::string BuildCreatePath(absl::string_view name) {
  if (name.empty()) return "/containers/create";
  return absl::StrCat("/containers/create?name=", UrlEncode(name));
}

std::string BuildListPath(const std::map<std::string, std::string>& labels) {
  std::string path = "/containers/json?all=1";
  if (!labels.empty()) {
    nlohmann::json selector = nlohmann::json::array();
    for (const auto& [key, value] : labels) selector.push_back(absl::StrCat(key, "=", value));
    nlohmann::json filters = {{"label", selector}};
    absl::StrAppend(&path, "&filters=",
                    UrlEncode(filters.dump(-1, ' ', false,
                                           nlohmann::json::error_handler_t::replace)));
  }
  return path;
}

std::string BuildLogsPath(absl::string_view id, const LogQuery& query) {
  return absl::StrCat("/containers/", id, "/logs?stdout=", query.stdout_stream ? 1 : 0,
                      "&stderr=", query.stderr_stream ? 1 : 0, "&follow=", query.follow ? 1 : 0,
                      "&tail=", query.tail > 0 ? std::to_string(query.tail) : "all");
}

std::optional<int> ExitCodeFromStatusText(absl::string_view status) {
  if (!absl::ConsumePrefix(&status, "Exited (")) return std::nullopt;
  size_t close = status.find(')');
  if (close == absl::string_view::npos) return std::nullopt;
  int code = 0;
  if (!absl::SimpleAtoi(status.substr(0, close), &code)) return std::nullopt;
  return code;
}

absl::StatusOr<std::vector<ContainerSummary>> ParseContainerList(absl::string_view body) {
  nlohmann::json json = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (json.is_discarded() || !json.is_array()) {
    return absl::InternalError(
        absl::StrCat("engine sent an unexpected container list: ", EngineMessage(body)));
  }
  std::vector<ContainerSummary> out;
  for (const nlohmann::json& item : json) {
    if (!item.is_object()) continue;
    ContainerSummary summary;
    summary.id = StringField(item, "Id");
    auto names = item.find("Names");
    if (names != item.end() && names->is_array() && !names->empty() && (*names)[0].is_string()) {
      summary.name = StripSlash((*names)[0].get<std::string>());
    }
    summary.state = absl::AsciiStrToLower(StringField(item, "State"));
    summary.labels = LabelsFrom(item.value("Labels", nlohmann::json()));
    // Podman's compat list carries ExitCode; Docker only has it in the Status text.
    auto exit_code = item.find("ExitCode");
    if (summary.state == "exited") {
      if (exit_code != item.end() && exit_code->is_number_integer()) {
        summary.exit_code = exit_code->get<int>();
      } else {
        summary.exit_code = ExitCodeFromStatusText(StringField(item, "Status"));
      }
    }
    out.push_back(std::move(summary));
  }
  return out;
}

absl::StatusOr<ContainerSummary> ParseInspect(absl::string_view body) {
  nlohmann::json json = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InternalError(
        absl::StrCat("engine sent an unexpected inspect document: ", EngineMessage(body)));
  }
  ContainerSummary summary;
  summary.id = StringField(json, "Id");
  summary.name = StripSlash(StringField(json, "Name"));
  auto state = json.find("State");
  if (state != json.end() && state->is_object()) {
    summary.state = absl::AsciiStrToLower(StringField(*state, "Status"));
    auto code = state->find("ExitCode");
    if ((summary.state == "exited" || summary.state == "dead" || summary.state == "stopped") &&
        code != state->end() && code->is_number_integer()) {
      summary.exit_code = code->get<int>();
    }
  }
  auto config = json.find("Config");
  if (config != json.end() && config->is_object()) {
    summary.labels = LabelsFrom(config->value("Labels", nlohmann::json()));
  }
  return summary;
}

std::string EngineMessage(absl::string_view body) {
  std::string message;
  nlohmann::json json = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!json.is_discarded() && json.is_object()) message = StringField(json, "message");
  if (message.empty()) message = std::string(absl::StripAsciiWhitespace(body));
  if (message.size() > kMaxMessage) message = absl::StrCat(message.substr(0, kMaxMessage), "...");
  return message;
}

absl::Status EngineHttpError(EngineOp op, long http_status, absl::string_view body,
                             absl::string_view engine, absl::string_view ref) {
  std::string message = EngineMessage(body);
  // Podman reports a name conflict as 500 "... is already in use".
  if (op == EngineOp::kCreate && http_status == 500 &&
      message.find("already in use") != std::string::npos) {
    http_status = 409;
  }
  switch (http_status) {
    case 404:
      if (op == EngineOp::kCreate) {
        return absl::FailedPreconditionError(absl::StrCat(
            "image ", ref, " is missing in ", engine,
            ": build it with tools/build_sandbox_image.sh (", engine, " said: ", message, ")"));
      }
      if (op == EngineOp::kPing || op == EngineOp::kVersion) break;
      return absl::NotFoundError(absl::StrCat("no such container ", ref, " in ", engine));
    case 409:
      return absl::AlreadyExistsError(absl::StrCat(engine, ": conflict: ", message));
    case 400:
      return absl::InvalidArgumentError(absl::StrCat(engine, " rejected the request: ", message));
    case 401:
    case 403:
      return absl::PermissionDeniedError(absl::StrCat(engine, " refused access: ", message));
    default:
      break;
  }
  return absl::InternalError(
      absl::StrCat(engine, " engine error (HTTP ", http_status, "): ", message));
}

}  // namespace fastest::backends::engine_api
