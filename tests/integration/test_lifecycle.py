"""The task lifecycle for real: template.yaml on moto, the real state machine, the simulator."""

from __future__ import annotations

from stackkit import request, submit

from wanflow.task import TaskStatus
from wanflow_local.stack import LocalStack

EXAMPLES = [
    ("wan26_i2v", "i2v", "video"),
    ("wan2.6-image-to-video-flash", "i2v", "video"),
    ("wan22_i2v_flash", "i2v", "video"),
    ("wan2.6-t2v", "t2v", "video"),
    ("wan2.6-i2v", "i2v", "video"),
    ("wan2.6-r2v", "r2v", "video"),
    ("wan26_i2i-edit", "edit", "image"),
    ("wan26_i2i-interleave", "interleave", "image"),
]


def test_every_model_and_mode_succeeds_with_outputs_in_s3(stack: LocalStack) -> None:
    # GIVEN one task per model and mode, submitted at once
    submitted = {}
    for name, mode, _ in EXAMPLES:
        status, submitted[name] = submit(stack, request(name))
        assert status == 202, submitted[name]
        assert submitted[name]["mode"] == mode
        assert submitted[name]["status"] == "queued"
    # WHEN their executions end
    for name, _, kind in EXAMPLES:
        task_id = submitted[name]["id"]
        record, execution = stack.finish(task_id)
        # THEN each succeeded, with its outputs copied to our bucket and its cost recorded
        assert execution["status"] == "SUCCEEDED", stack.history(task_id)[-3:]
        assert record.status is TaskStatus.SUCCEEDED, record.error
        keys = [o.key for o in record.outputs if o.type != "text"]
        assert keys, record.outputs
        stored = stack.objects(f"results/acme/{task_id}/")
        assert sorted(stored) == sorted(keys)
        for key in keys:
            head = stored[key][:12]
            assert (b"ftyp" in head) if kind == "video" else head.startswith(b"\x89PNG")
        assert record.usage is not None
        assert record.usage.cost_usd is not None
        assert record.completed_at is not None


def test_callback_model_completes_by_callback(stack: LocalStack) -> None:
    _, task = submit(stack, request("wan2.6-image-to-video-flash"))
    assert task["completion"] == "callback"
    record, execution = stack.finish(task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    assert record.polls == 0  # it was never checked
    names = [e["type"] for e in stack.history(task["id"])]
    assert "WaitStateEntered" not in names  # no polling happened
