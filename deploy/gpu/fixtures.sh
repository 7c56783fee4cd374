# Sourced by pack.sh and check.sh: the fixture models the GPU check runs on (paths in the working tree, which the
# device tool carries), and the greedy prompt both use, so the CPU tokens made at pack time match the device run.
deploy_fixtures() {
  local fx=core/src/test/resources/fixtures
  echo "$fx/deepseek-v3-tiny/bf16 $fx/deepseek-v3-qlora0 $fx/mixtral-tiny $fx/qwen2-moe-tiny $fx/qwen3-moe-tiny"
}
GREEDY_PROMPT=1,17,42,99,5,200,3,77   # inside every fixture vocabulary (256)
GREEDY_TOKENS=16
