#include "server/api/run_result_json.h"

namespace fastest::server {

nlohmann::json RunResultToJson(const RunResult& r) {
  nlohmann::json j;
  j["success"] = r.success;
  j["job_id"] = r.job_id;
  if (r.output_snapshot_id) j["output_snapshot_id"] = *r.output_snapshot_id;
  if (r.error) j["error"] = *r.error;
  j["duration_ms"] = r.duration_ms;
  j["stdout"] = r.stdout_text;
  j["stderr"] = r.stderr_text;
  if (!r.status.empty()) j["status"] = r.status;
  if (r.exit_code) j["exit_code"] = *r.exit_code;
  return j;
}

}  // namespace fastest::server
