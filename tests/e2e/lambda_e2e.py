"""The deployed shape, run locally: ministack runs the three x86_64 `bootstrap` zips as real
Lambdas behind an HTTP API, with DynamoDB, the events queue and its DLQ, and the dispatch
function on an SQS event source mapping with ReportBatchItemFailures, all wired as
`template.yaml` wires them. `make e2e-lambda` builds the zips and runs this.

What it proves, beyond the handler tests: lambda_http parses real API Gateway requests, the
dispatch function's batch responses are honoured by a real event source mapping, the functions
configure themselves from the environment the template sets, and EMF lines reach the logs.

Usage: python tests/e2e/lambda_e2e.py <dir holding the release binaries ingest, api, dispatch>

ministack runs each bootstrap natively, so this uses the host's x86_64 release build (the same
binaries `make bench` measures); `make build` makes the arm64 ones that are deployed.
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
import io
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ADMIN_KEY = "e2e-admin-key-0123456789abcdef"
MAX_RECEIVES = 2
VISIBILITY = 3
# The functions' delivery timeout here, and how long a hanging receiver waits: past it, and
# past the api function's timeout too, so only Herald's own timeout can end a test send.
DELIVERY_TIMEOUT = 5
HANG_SECONDS = 40
FUNCTIONS = {"ingest": "IngestFunction", "api": "ApiFunction", "dispatch": "DispatchFunction"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=60.0, every=0.2):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Receiver:
    """A local webhook endpoint: records every request, answers from a per-path script."""

    def __init__(self):
        self.requests = []
        self.script = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    seen = sum(1 for r in outer.requests if r["path"] == self.path)
                    replies = outer.script.get(self.path, [200])
                    status = replies[min(seen, len(replies) - 1)]
                    outer.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                    )
                if status == "hang":
                    time.sleep(HANG_SECONDS)
                    status = 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path):
        return [r for r in self.requests if r["path"] == path]


def lower(headers):
    return {k.lower(): v for k, v in headers.items()}


def verify_signature(secret, request):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    h = lower(request["headers"])
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + request["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in h["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


def bootstrap_zip(binary):
    """A Lambda deployment package: the binary as an executable `bootstrap` at the root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        entry = zipfile.ZipInfo("bootstrap")
        entry.external_attr = 0o100755 << 16
        entry.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(entry, Path(binary).read_bytes())
    return buffer.getvalue()


def template():
    """template.yaml with CloudFormation's short-form tags kept as plain values."""

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return {suffix: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {suffix: loader.construct_sequence(node)}
        return {suffix: loader.construct_mapping(node)}

    Loader.add_multi_constructor("!", tagged)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)


class Stack:
    def __init__(self, bins):
        self.bins = Path(bins)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.workdir = tempfile.mkdtemp(prefix="herald-e2e-")
        env = dict(
            os.environ,
            GATEWAY_PORT=str(self.port),
            BIND_HOST="127.0.0.1",
            MINISTACK_REGION=REGION,
            # Passed through to the bootstrap processes, so the AWS SDK in each function talks
            # to ministack. Region and credentials likewise.
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_SESSION_TOKEN="test",
            AWS_DEFAULT_REGION=REGION,
            TMPDIR=self.workdir,
        )
        self.log = open(Path(self.workdir) / "ministack.log", "wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ministack"))],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        wait_for("ministack", self.healthy, timeout=60)
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
        self.client = lambda name: session.client(name, endpoint_url=self.endpoint)

    def healthy(self):
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_ministack/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)

    def deploy(self, receiver_policy="loopback"):
        t = template()
        resources = t["Resources"]
        table = resources["Table"]["Properties"]
        ddb = self.client("dynamodb")
        ddb.create_table(
            TableName="herald-e2e",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
        )
        sqs = self.client("sqs")
        dlq = sqs.create_queue(QueueName="herald-e2e-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(
            QueueName="herald-e2e-events",
            Attributes={
                # Compressed from the template's 360 s so a failing record comes back quickly.
                "VisibilityTimeout": str(VISIBILITY),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue, self.dlq = queue, dlq
        # The admin key as the template keeps it: a secret whose ARN the api function reads.
        admin_secret = self.client("secretsmanager").create_secret(
            Name="herald-e2e-admin", SecretString=ADMIN_KEY)["ARN"]

        # Every variable the template sets, with the local value standing in for each
        # reference: a variable added to the template without a value here fails the run.
        local = {
            "RUST_LOG": "info",
            "HERALD_TABLE_NAME": "herald-e2e",
            "HERALD_QUEUE_URL": queue,
            # The receivers are on loopback, which the deployed `public` policy refuses.
            "HERALD_TARGET_POLICY": receiver_policy,
            "HERALD_REQUIRE_HTTPS": "false",
            "HERALD_ALLOWED_PORTS": "",
            "HERALD_RETRY_SCHEDULE": "0s,2s",
            "HERALD_DISPATCH_CONCURRENCY": "50",
            "HERALD_DELIVERY_TIMEOUT": f"{DELIVERY_TIMEOUT}s",
            "HERALD_MAX_WEBHOOKS": "100",
            "HERALD_RATE_LIMIT": "0",
            "HERALD_ENDPOINT_CONCURRENCY": "10",
            "HERALD_DISABLE_AFTER": "5d",
            # The queue's redrive count above, which dispatch needs to know its last receive.
            "HERALD_MAX_RECEIVES": str(MAX_RECEIVES),
            "HERALD_ADMIN_KEY_SECRET": admin_secret,
        }
        globals_ = t["Globals"]["Function"]
        lam = self.client("lambda")
        self.arns = {}
        for name, logical in FUNCTIONS.items():
            props = resources[logical]["Properties"]
            names = list(globals_["Environment"]["Variables"]) + list(
                props.get("Environment", {}).get("Variables", {})
            )
            missing = [n for n in names if n not in local]
            assert not missing, f"no local value for {missing} set by template.yaml"
            variables = {n: local[n] for n in names if local[n] != ""}
            arn = lam.create_function(
                FunctionName=f"herald-{name}",
                Runtime=globals_["Runtime"],
                Handler=globals_["Handler"],
                # ministack runs the bootstrap natively, so this run uses the x86_64 build.
                Architectures=["x86_64"],
                Role="arn:aws:iam::000000000000:role/herald",
                Code={"ZipFile": bootstrap_zip(self.bins / name)},
                Timeout=props.get("Timeout", globals_["Timeout"]),
                MemorySize=props.get("MemorySize", globals_["MemorySize"]),
                Environment={"Variables": variables},
            )["FunctionArn"]
            self.arns[name] = arn

        sqs_event = resources["DispatchFunction"]["Properties"]["Events"]["EventsQueue"]["Properties"]
        assert sqs_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        lam.create_event_source_mapping(
            FunctionName="herald-dispatch",
            EventSourceArn=queue_arn,
            BatchSize=10,
            MaximumBatchingWindowInSeconds=sqs_event["MaximumBatchingWindowInSeconds"],
            FunctionResponseTypes=sqs_event["FunctionResponseTypes"],
            Enabled=True,
        )

        apigw = self.client("apigatewayv2")
        api = apigw.create_api(Name="herald-e2e", ProtocolType="HTTP")["ApiId"]
        targets = {}
        for name in ("ingest", "api"):
            integration = apigw.create_integration(
                ApiId=api,
                IntegrationType="AWS_PROXY",
                PayloadFormatVersion="2.0",
                IntegrationUri=self.arns[name],
            )["IntegrationId"]
            targets[name] = f"integrations/{integration}"
        # The template's routes: the events paths to ingest, everything else to api.
        for logical, name in (("IngestFunction", "ingest"), ("ApiFunction", "api")):
            for event in resources[logical]["Properties"]["Events"].values():
                p = event["Properties"]
                apigw.create_route(ApiId=api, RouteKey=f"{p['Method']} {p['Path']}", Target=targets[name])
        apigw.create_stage(ApiId=api, StageName="$default", AutoDeploy=True)
        self.api_url = f"{self.endpoint}/_aws/execute-api/{api}"

    def call(self, method, path, body=None, key=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api_url + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if key:
            request.add_header("authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                raw = r.read()
                return r.status, lower(r.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, lower(e.headers), json.loads(raw) if raw else None

    def logs(self, function):
        logs = self.client("logs")
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/herald-{function}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in events]

    def dlq_bodies(self):
        sqs = self.client("sqs")
        got = sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [m["Body"] for m in got.get("Messages", [])]


def main(bins):
    started = time.time()
    receiver = Receiver()
    receiver.script["/flaky"] = [500, 200]
    stack = Stack(bins)
    checks = []

    def check(name, ok, detail=""):
        checks.append(name)
        print(f"  ok  {name}" if ok else f"  FAIL {name}: {detail}", flush=True)
        if not ok:
            raise AssertionError(f"{name}: {detail}")

    try:
        stack.deploy()
        print(f"ministack on {stack.endpoint}; functions deployed in {time.time() - started:.1f} s", flush=True)

        status, _, body = stack.call("GET", "/v1/health")
        check("api function answers through the HTTP API", status == 200 and body["status"] == "ok", body)

        status, headers, body = stack.call("POST", "/v1/events", {"type": "experiments.failed"})
        check(
            "ingest without a key is a 401 problem",
            status == 401 and headers.get("content-type") == "application/problem+json",
            (status, headers, body),
        )

        status, _, tenant = stack.call("POST", "/v1/tenants", {"name": "e2e"}, key=ADMIN_KEY)
        check("a tenant is created with the admin key", status == 201, tenant)
        key = tenant["key"]

        status, _, ok_hook = stack.call(
            "POST", "/v1/webhooks", {"url": receiver.url + "/ok", "events": ["experiments.failed"]}, key
        )
        check("a webhook is created", status == 201, ok_hook)
        status, _, flaky_hook = stack.call(
            "POST", "/v1/webhooks", {"url": receiver.url + "/flaky", "events": ["experiments.*"]}, key
        )
        check("a second webhook is created", status == 201, flaky_hook)

        # A test send to a receiver that never answers ends with Herald's delivery timeout,
        # inside the api function's own (the template's: delivery timeout + 5 s), as an answer.
        receiver.script["/hang"] = ["hang"]
        status, _, hang_hook = stack.call(
            "POST", "/v1/webhooks", {"url": receiver.url + "/hang", "events": ["experiments.failed"]}, key
        )
        check("a webhook at a hanging receiver is created", status == 201, hang_hook)
        sent_at = time.time()
        status, _, sent = stack.call(
            "POST", f"/v1/webhooks/{hang_hook['id']}/test", {"event_type": "experiments.failed"}, key
        )
        took = time.time() - sent_at
        check("a test send to a hanging receiver answers delivered:false, timeout, not a gateway error",
              status == 200 and sent["delivered"] is False and sent["error"].startswith("timeout"),
              (status, sent, f"{took:.1f} s"))
        status, _, _ = stack.call("DELETE", f"/v1/webhooks/{hang_hook['id']}", key=key)
        check("the hanging receiver's webhook is deleted", status == 204, status)

        event = {"id": "e2e-1", "type": "experiments.failed", "project": "Light detection",
                 "object": {"kind": "experiment", "name": "cifar10"}, "data": {"state": "ERROR"}}
        status, _, body = stack.call("POST", "/v1/events", event, key)
        check("ingest accepts the event", status == 202 and body["status"] == "accepted", body)

        got = wait_for("the delivery to /ok", lambda: receiver.to("/ok"), timeout=90)
        check("the dispatch function delivered it", len(got) == 1 and json.loads(got[0]["body"])["id"] == "e2e-1",
              got)
        check("the delivery is signed with the webhook's secret", verify_signature(ok_hook["secret"], got[0]))

        flaky = wait_for("the retry to /flaky", lambda: len(receiver.to("/flaky")) >= 2 and receiver.to("/flaky"),
                         timeout=90)
        check("a 500 is retried on the schedule, same webhook-id",
              [r["status"] for r in flaky] == [500, 200]
              and lower(flaky[0]["headers"])["webhook-id"] == lower(flaky[1]["headers"])["webhook-id"], flaky)

        def logged():
            status, _, page = stack.call("GET", f"/v1/webhooks/{flaky_hook['id']}/deliveries", key=key)
            items = page["data"] if status == 200 else []
            return items and items[0]["status"] == "succeeded" and items
        items = wait_for("the delivery log", logged, timeout=30)
        status, _, delivery = stack.call("GET", f"/v1/deliveries/{items[0]['id']}", key=key)
        check("the log holds both attempts", [a["status_code"] for a in delivery["attempts"]] == [500, 200], delivery)

        # A poison record beside a good one in one batch: only the poison comes back, and after
        # maxReceiveCount it is in the DLQ; the good one is delivered once.
        envelope = json.loads(json.dumps({"tenant_id": tenant["id"], "envelope_id": "01JDA8Q3Z5X8N2V7K4M6P9R1T3",
                                          "event": dict(event, id="e2e-2", occurred_at="2026-11-22T10:00:00Z",
                                                        text="Experiment cifar10 failed")}))
        sqs = stack.client("sqs")
        sqs.send_message_batch(QueueUrl=stack.queue, Entries=[
            {"Id": "good", "MessageBody": json.dumps(envelope)},
            {"Id": "poison", "MessageBody": "this is not an event envelope"},
        ])
        wait_for("the good record's delivery", lambda: any(
            json.loads(r["body"])["id"] == "e2e-2" for r in receiver.to("/ok")), timeout=60)
        dead = wait_for("the poison record in the DLQ", stack.dlq_bodies,
                        timeout=VISIBILITY * (MAX_RECEIVES + 2) + 30, every=1)
        check("only the poison record was reported and dead-lettered",
              dead == ["this is not an event envelope"], dead)
        time.sleep(VISIBILITY + 1)
        twice = [r for r in receiver.to("/ok") if json.loads(r["body"])["id"] == "e2e-2"]
        check("the good record of that batch was not redelivered", len(twice) == 1, twice)

        emf = [json.loads(m) for m in stack.logs("dispatch") if m.lstrip().startswith('{"') and "_aws" in m]
        succeeded = sum(d.get("DeliveriesSucceeded", 0) for d in emf)
        check("dispatch wrote EMF metrics to its log", emf and succeeded >= 3
              and emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Herald", emf[:2])
        print(f"e2e-lambda: {len(checks)} checks passed in {time.time() - started:.1f} s", flush=True)
    except BaseException:
        print("--- ministack log (tail) ---", file=sys.stderr)
        stack.log.flush()
        text = (Path(stack.workdir) / "ministack.log").read_text(errors="replace")
        print(text[-6000:], file=sys.stderr)
        raise
    finally:
        stack.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "release")
