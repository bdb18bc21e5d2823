"""The official `openai` Python package against Skein's OpenAI-compatible endpoint.

`cargo xtask test` starts `skein-live` (the real server with the fake provider) and runs this
with SKEIN_URL and SKEIN_LLM_STATS set; the package is pinned in requirements.txt.
"""

import json
import os
import threading
import time
import unittest
import urllib.request
import uuid

import openai

BASE = os.environ["SKEIN_URL"]
STATS = os.environ["SKEIN_LLM_STATS"]


def api(method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as res:
            raw = res.read()
            return res.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def ok(status_and_body, expected=(200, 201)):
    status, body = status_and_body
    assert status in expected, (status, body)
    return body


def stats():
    with urllib.request.urlopen(STATS) as res:
        return json.loads(res.read())


class Fixture:
    def __init__(self):
        email = f"py-{uuid.uuid4()}@example.com"
        reg = ok(api("POST", "/api/auth/register", body={
            "email": email, "password": "correct horse battery", "display_name": "Py"}))
        self.person = reg["token"]
        ws = ok(api("POST", "/api/workspaces", self.person, {"name": "Python"}))["id"]
        self.assistant = "Helper-" + uuid.uuid4().hex[:6]
        ok(api("POST", f"/api/workspaces/{ws}/assistants", self.person,
               {"name": self.assistant, "provider": "fake", "model": "tokens-5"}))
        self.conversation = ok(api("POST", "/api/conversations", self.person,
                                   {"workspace_id": ws, "kind": "channel", "title": "py"}))["id"]
        key = ok(api("POST", f"/api/workspaces/{ws}/api-keys", self.person,
                     {"name": "py-bot", "scopes": ["read", "write", "assistant"],
                      "conversation_ids": [self.conversation]}))
        self.key, self.key_id = key["secret"], key["id"]
        self.client = openai.OpenAI(base_url=BASE + "/v1", api_key=self.key, max_retries=0)


F = None


def setUpModule():
    global F
    F = Fixture()


class OpenAiPython(unittest.TestCase):
    def test_models_lists_assistants_and_provider_models(self):
        ids = [m.id for m in F.client.models.list()]
        self.assertIn(F.assistant, ids)
        self.assertIn("fake/tokens-5", ids)

    def test_a_plain_completion(self):
        done = F.client.chat.completions.create(
            model="fake/tokens-3", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(done.choices[0].message.content, "t0 t1 t2 ")
        self.assertEqual(done.choices[0].finish_reason, "stop")
        self.assertEqual(done.usage.completion_tokens, 3)

    def test_a_streamed_completion_by_an_assistant(self):
        stream = F.client.chat.completions.create(
            model=F.assistant, messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})
        text, usage = "", None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage
        self.assertEqual(text, "t0 t1 t2 t3 t4 ")
        self.assertEqual(usage.completion_tokens, 5)

    def test_closing_a_stream_stops_the_provider(self):
        before = stats()["aborted"]
        stream = F.client.chat.completions.create(
            model="fake/tokens-500-every-20", messages=[{"role": "user", "content": "long"}], stream=True)
        seen = 0
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen += 1
            if seen == 3:
                break
        stream.close()
        deadline = time.time() + 10
        while stats()["aborted"] == before:
            self.assertLess(time.time(), deadline, "the provider was not stopped")
            time.sleep(0.05)

    def test_a_bad_key_and_a_bad_request_raise_the_usual_errors(self):
        stranger = openai.OpenAI(base_url=BASE + "/v1", api_key="sk_skein_not-a-key", max_retries=0)
        with self.assertRaises(openai.AuthenticationError) as caught:
            stranger.chat.completions.create(model=F.assistant, messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(caught.exception.code, "invalid_api_key")
        with self.assertRaises(openai.BadRequestError) as caught:
            F.client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(caught.exception.code, "model_not_found")
        self.assertEqual(caught.exception.param, "model")
        with self.assertRaises(openai.BadRequestError) as caught:
            F.client.chat.completions.create(model=F.assistant, n=2, messages=[{"role": "user", "content": "x"}])
        self.assertEqual(caught.exception.param, "n")

    def test_a_thread_bound_call_is_stored_and_streamed_to_the_thread(self):
        root = ok(api("POST", f"/api/threads/{F.conversation}/root", F.person, {"content": "ask the bot"}))["id"]
        seen = []
        watching = threading.Event()

        def watch():
            req = urllib.request.Request(f"{BASE}/api/conversations/{F.conversation}/stream")
            req.add_header("authorization", f"Bearer {F.person}")
            with urllib.request.urlopen(req, timeout=20) as res:
                watching.set()
                for line in res:
                    if line.startswith(b"data:"):
                        event = json.loads(line[5:])
                        seen.append(event)
                        if event["type"] == "message.done":
                            return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        self.assertTrue(watching.wait(10))
        done = F.client.chat.completions.create(
            model=F.assistant, messages=[{"role": "user", "content": "from python"}],
            metadata={"skein_thread": root})
        self.assertEqual(done.choices[0].message.content, "t0 t1 t2 t3 t4 ")
        exchange = done.to_dict()["skein"]
        watcher.join(20)
        kinds = [(e["type"], e.get("message_id")) for e in seen]
        self.assertIn(("message.created", exchange["message_id"]), kinds)
        self.assertIn(("message.done", exchange["answer_id"]), kinds)
        self.assertTrue(any(e["type"] == "message.delta" for e in seen))
        tree = ok(api("GET", f"/api/threads/{root}/tree", F.person))["data"]
        by_id = {n["id"]: n for n in tree}
        asked, answer = by_id[exchange["message_id"]], by_id[exchange["answer_id"]]
        self.assertEqual((asked["content"], asked["parent_id"]), ("from python", root))
        self.assertEqual(asked["author_kind"], "service")
        self.assertEqual(asked["via"], {"kind": "openai", "api_key_id": F.key_id})
        self.assertEqual((answer["parent_id"], answer["content"]), (asked["id"], "t0 t1 t2 t3 t4 "))


if __name__ == "__main__":
    unittest.main()
