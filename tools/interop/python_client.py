#!/usr/bin/env python3
"""Checks an ExpertMesh router with a gRPC client written from the .proto files alone (Python grpcio).

Calls grpc.health.v1.Health/Check (expects SERVING), GetModelInfo, then a streaming Generate with token ids.
Prints one JSON object per line: the health, the model, each generated token, the finish. Exits 0 when every
expectation holds, 1 on a mismatch (each one explained on stderr), 2 when an RPC fails.
Stubs come from gen_stubs.sh (run_interop.sh does both).
"""
import argparse
import json
import os
import sys


def parse_ids(text):
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="the router's HOST:PORT")
    p.add_argument("--stubs", required=True, help="directory of the stubs gen_stubs.sh generated")
    p.add_argument("--prompt-ids", type=parse_ids, default=[1, 2, 3], help="prompt token ids, e.g. 0,818,726")
    p.add_argument("--max-tokens", type=int, default=8, help="tokens to generate at most (default 8)")
    p.add_argument("--temperature", type=float, default=0.0, help="default 0 (greedy)")
    p.add_argument("--top-logprobs", type=int, default=0, help="alternatives per token, 0 to 20")
    p.add_argument("--ignore-eos", action="store_true", help="keep generating past end-of-sequence tokens")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline of each call, in seconds (default 60)")
    p.add_argument("--skip-health", action="store_true", help="do not call grpc.health.v1.Health/Check")
    p.add_argument("--health-service", default="", help='service name for Health/Check (default "": the server)')
    p.add_argument("--expect-model-id", help="the model id GetModelInfo must report")
    p.add_argument("--expect-tokens", type=parse_ids, help="the exact generated token ids, e.g. 765,164,924")
    p.add_argument("--expect-finish", choices=["stop", "length", "cancelled", "error"],
                   help="the finish reason")
    p.add_argument("--expect-prompt-tokens", type=int, help="usage.prompt_tokens")
    return p.parse_args(argv)


def load_stubs(stubs):
    sys.path.insert(0, stubs)
    import grpc
    # grpc/health/v1 is generated next to expertmesh/, but "grpc" is grpcio's own package: let it find the
    # generated subpackage too (grpcio-health-checking would install the same modules as grpc_health.v1).
    grpc.__path__.append(os.path.join(stubs, "grpc"))
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    from expertmesh.inference.v1 import inference_pb2, inference_pb2_grpc
    return grpc, health_pb2, health_pb2_grpc, inference_pb2, inference_pb2_grpc


FINISH_NAMES = {1: "stop", 2: "length", 3: "cancelled", 4: "error"}


class Checker:
    def __init__(self):
        self.mismatches = []

    def expect(self, what, expected, actual):
        if expected is not None and expected != actual:
            self.mismatches.append("%s: expected %r, got %r" % (what, expected, actual))

    def require(self, ok, message):
        if not ok:
            self.mismatches.append(message)


def emit(obj):
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def main(argv):
    args = parse_args(argv)
    grpc, health_pb2, health_pb2_grpc, inference_pb2, inference_pb2_grpc = load_stubs(args.stubs)
    check = Checker()
    request_id = "interop-%d" % os.getpid()
    with grpc.insecure_channel(args.target) as channel:
        try:
            if not args.skip_health:
                health = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=args.health_service), timeout=args.timeout)
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
                emit({"health": status})
                check.expect("health", "SERVING", status)

            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            info = stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), timeout=args.timeout)
            emit({"model_id": info.model_id, "architecture": info.shape.architecture,
                  "vocab_size": info.shape.vocab_size, "max_context": info.shape.max_context,
                  "has_tokenizer": info.has_tokenizer, "eos_token_ids": list(info.eos_token_ids)})
            check.expect("model_id", args.expect_model_id, info.model_id)
            vocab = info.shape.vocab_size
            check.require(vocab > 0, "model shape: vocab_size is %d" % vocab)
            for i in args.prompt_ids:
                check.require(0 <= i < vocab, "prompt id %d is outside the vocabulary [0, %d)" % (i, vocab))

            request = inference_pb2.GenerateRequest(
                request_id=request_id,
                token_ids=inference_pb2.TokenIds(ids=args.prompt_ids),
                sampling=inference_pb2.SamplingParams(temperature=args.temperature),
                max_tokens=args.max_tokens, ignore_eos=args.ignore_eos, logprobs=True,
                top_logprobs=args.top_logprobs)
            tokens, finished, after_finish = [], None, 0
            for response in stub.Generate(request, timeout=args.timeout):
                check.require(response.request_id == request_id, "request_id: expected %r, got %r"
                              % (request_id, response.request_id))
                if finished is not None:
                    after_finish += 1
                for t in response.tokens:
                    line = {"index": t.index, "token_id": t.token_id, "text": t.text}
                    if t.HasField("logprob"):
                        line["logprob"] = t.logprob
                    if t.top_logprobs:
                        line["top_logprobs"] = [{"token_id": a.token_id, "logprob": a.logprob}
                                                for a in t.top_logprobs]
                    emit(line)
                    check.require(t.index == len(tokens), "token index: expected %d, got %d"
                                  % (len(tokens), t.index))
                    check.require(0 <= t.token_id < vocab, "token id %d is outside the vocabulary" % t.token_id)
                    check.require(t.HasField("logprob") and t.logprob <= 0,
                                  "token %d: logprob missing or positive" % t.index)
                    check.require(len(t.top_logprobs) == args.top_logprobs, "token %d: %d top_logprobs, asked %d"
                                  % (t.index, len(t.top_logprobs), args.top_logprobs))
                    tokens.append(t.token_id)
                if response.HasField("finished"):
                    finished = response.finished
        except grpc.RpcError as e:
            print("RPC failed: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
            return 2

    check.require(finished is not None, "the stream ended without a finished message")
    check.require(after_finish == 0, "%d message(s) after the finished one" % after_finish)
    if finished is not None:
        reason = FINISH_NAMES.get(finished.reason, "unspecified")
        u = finished.usage
        emit({"finish_reason": reason, "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
              "cached_prompt_tokens": u.cached_prompt_tokens, "time_to_first_token_ms": u.time_to_first_token_ms,
              "total_ms": u.total_ms, "queue_ms": u.queue_ms})
        check.expect("finish_reason", args.expect_finish, reason)
        check.expect("usage.completion_tokens", len(tokens), u.completion_tokens)
        check.expect("usage.prompt_tokens", args.expect_prompt_tokens, u.prompt_tokens)
        check.require(len(tokens) <= args.max_tokens, "%d tokens, more than max_tokens %d"
                      % (len(tokens), args.max_tokens))
    check.expect("tokens", args.expect_tokens, tokens)
    for m in check.mismatches:
        print("MISMATCH " + m, file=sys.stderr)
    return 1 if check.mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
