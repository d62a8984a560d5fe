"""The SDK against a live server over HTTP: runs, status, details, tags, properties, filters."""

from __future__ import annotations

import pytest

from runs import sdk
from runs.models import Run as RunModel
from runs.models import RunStatusEvent
from runs.sdk import Experiment, Run


def test_it_starts_logs_and_completes_a_run(ws: sdk.Workspace) -> None:
    exp = Experiment(workspace=ws, name="explore-runs")
    run = exp.start_logging()
    run.log(name="message", value="Hello from run!")
    assert run.get_status() == "Running"

    details = run.get_details()
    assert details["runId"] == run.id
    assert details["runId"].startswith("explore-runs_")
    assert details["status"] == "Running"
    assert details["target"] == "local"
    assert details["submittedBy"] == "alice"
    assert details["startTimeUtc"]
    assert details["properties"] == {} and details["tags"] == {} and details["logFiles"] == {}
    assert "endTimeUtc" not in details and "error" not in details  # null keys are left out

    run.complete()
    assert run.get_status() == "Completed"
    assert run.get_details()["endTimeUtc"]
    assert run.get_metrics() == {"message": "Hello from run!"}


def test_it_numbers_runs_and_takes_display_name_and_description(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "numbers")
    first = exp.start_logging(display_name="baseline", description="**bold** start")
    second = exp.start_logging()
    assert (first.number, second.number) == (1, 2)
    assert first.get_details()["displayName"] == "baseline"
    assert first.description == "**bold** start"


def test_a_with_block_completes_the_run(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "with-block")
    with exp.start_logging() as run:
        run.log("loss", 0.5)
    assert run.get_status() == "Completed"
    assert run.get_metrics("loss") == {"loss": 0.5}


def test_a_with_block_that_raises_fails_the_run_with_the_exception(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "with-block")
    with pytest.raises(ValueError, match="bad batch"), exp.start_logging() as run:
        run.log("loss", 0.5)
        raise ValueError("bad batch")
    details = run.get_details()
    assert details["status"] == "Failed"
    assert details["error"]["error"]["code"] == "ValueError"
    assert details["error"]["error"]["message"] == "ValueError: bad batch"
    assert "Traceback" in details["error"]["error"]["details"]
    assert run.get_metrics("loss") == {"loss": 0.5}  # logged points were flushed before failing


def test_a_with_block_leaves_a_run_the_block_ended_itself(ws: sdk.Workspace) -> None:
    with Experiment(ws, "with-block").start_logging() as run:
        run.fail(error_details="stopped early", error_code="EarlyStop")
    assert run.get_status() == "Failed"
    assert run.get_details()["error"]["error"] == {"code": "EarlyStop", "message": "stopped early"}


def test_properties_are_write_once(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "props").start_logging()
    run.add_properties({"author": "azureml-user"})
    run.add_properties({"author": "azureml-user"})  # the same value again is a no-op
    with pytest.raises(sdk.PropertyConflictException) as caught:
        run.add_properties({"author": "different-user", "team": "vision"})
    error = caught.value
    assert (error.key, error.existing, error.new) == ("author", "azureml-user", "different-user")
    assert "author" in error.message and "azureml-user" in error.message and "different-user" in error.message
    assert error.status_code == 409
    assert run.get_properties() == {"author": "azureml-user"}  # nothing of the refused request stored


def test_tags_are_mutable_and_may_have_no_value(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "tags").start_logging()
    run.tag("quality", "great run")
    run.tag("quality", "fantastic run")
    run.tag("worth another look")
    assert run.get_tags() == {"quality": "fantastic run", "worth another look": None}
    run.set_tags({"team": "vision", "epochs": 10})
    assert run.get_tags()["epochs"] == "10"
    run.remove_tags(["team", "epochs"])
    assert run.get_tags() == {"quality": "fantastic run", "worth another look": None}
    assert run.tags == {"quality": "fantastic run", "worth another look": None}


def test_display_name_and_description_are_editable(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "names").start_logging()
    run.display_name = "baseline"
    run.description = "**Markdown** text"
    details = Run(Experiment(ws, "names"), run.id).get_details()
    assert details["displayName"] == "baseline"
    assert details["description"] == "**Markdown** text"


def test_get_runs_filters_by_tags_and_properties(ws: sdk.Workspace) -> None:
    exp = Experiment(workspace=ws, name="explore-runs")
    match = exp.start_logging()
    match.add_properties({"author": "azureml-user"})
    match.tag("quality", "fantastic run")
    wrong_tag = exp.start_logging()
    wrong_tag.add_properties({"author": "azureml-user"})
    wrong_tag.tag("quality", "great run")
    flagged = exp.start_logging()
    flagged.tag("worth another look")
    Experiment(ws, "elsewhere").start_logging().tag("worth another look")  # another experiment

    found = list(exp.get_runs(properties={"author": "azureml-user"}, tags={"quality": "fantastic run"}))
    assert [r.id for r in found] == [match.id]
    assert [r.id for r in exp.get_runs(tags="worth another look")] == [flagged.id]
    assert {r.id for r in exp.get_runs(properties={"author": "azureml-user"})} == {match.id, wrong_tag.id}
    assert [r.id for r in exp.get_runs()] == [flagged.id, wrong_tag.id, match.id]  # newest first


def test_get_runs_filters_by_status_and_pages_through_many(ws: sdk.Workspace, settings) -> None:
    settings.RUNS_PAGE_SIZE = 3
    exp = Experiment(ws, "many")
    runs = [exp.start_logging() for _ in range(7)]
    for run in runs[:4]:
        run.complete()
    assert len(list(exp.get_runs())) == 7
    assert {r.id for r in exp.get_runs(status="Completed")} == {r.id for r in runs[:4]}
    assert {r.id for r in Run.list(exp, status=["Running"])} == {r.id for r in runs[4:]}


def test_fail_and_cancel(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "endings")
    failed = exp.start_logging()
    failed.fail(error_details="bad data", error_code="UserError")
    details = failed.get_details()
    assert details["status"] == "Failed"
    assert details["error"]["error"] == {"code": "UserError", "message": "bad data"}

    canceled = exp.start_logging()
    canceled.cancel()
    assert canceled.get_status() == "Canceled"
    with pytest.raises(sdk.ConflictException, match="already ended"):
        canceled.cancel()
    with pytest.raises(sdk.ConflictException, match="Canceled, which is final"):
        canceled.complete()
    assert canceled.get_status() == "Canceled"


def test_every_status_change_is_an_event(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "events").start_logging()
    run.complete()
    events = RunStatusEvent.objects.filter(run__run_id=run.id)
    assert [(e.from_status, e.to_status, e.by.username) for e in events] == [
        ("NotStarted", "Running", "alice"),
        ("Running", "Completed", "alice"),
    ]


def test_it_reattaches_to_a_run_and_lists_experiments(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "reattach")
    run = exp.start_logging(display_name="first")
    again = Run(exp, run.id)
    assert again == run and again.display_name == "first"
    assert Run.get(ws, run.id).experiment.name == "reattach"
    Experiment(ws, "another")
    assert [e.name for e in Experiment.list(ws)] == ["another", "reattach"]
    assert set(ws.experiments) == {"another", "reattach"}
    with pytest.raises(sdk.NotFoundException, match="not found"):
        Run(exp, "no-such-run")


def test_a_caller_may_choose_the_run_id(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "ids")
    run = exp.start_logging(run_id="my-own-id-1")
    assert run.id == "my-own-id-1"
    with pytest.raises(sdk.ConflictException, match="already exists"):
        exp.start_logging(run_id="my-own-id-1")
    assert RunModel.objects.filter(run_id="my-own-id-1").count() == 1


def test_a_reader_reads_but_cannot_write(ws: sdk.Workspace, reader_ws: sdk.Workspace) -> None:
    run = Experiment(ws, "shared").start_logging()
    run.tag("owner", "alice")
    as_reader = Run.get(reader_ws, run.id)
    assert as_reader.get_tags() == {"owner": "alice"}
    with pytest.raises(sdk.PermissionDeniedException, match="Reader"):
        as_reader.tag("owner", "bob")
    with pytest.raises(sdk.PermissionDeniedException):
        as_reader.complete()
    with pytest.raises(sdk.PermissionDeniedException):
        Experiment(reader_ws, "new-experiment")
    Experiment(reader_ws, "shared")  # opening an existing experiment needs no write access
    assert run.get_tags() == {"owner": "alice"} and run.get_status() == "Running"


def test_a_stranger_sees_nothing(ws: sdk.Workspace, live_server, charlie, other_workspace) -> None:
    from tests.conftest import token_for

    run = Experiment(ws, "private").start_logging()
    stranger = sdk.Workspace("default", url=live_server.url, token=token_for(charlie))
    with pytest.raises(sdk.NotFoundException):
        Run.get(stranger, run.id)
    with pytest.raises(sdk.NotFoundException):
        Experiment.list(stranger)


def test_a_bad_token_is_refused(live_server, workspace) -> None:
    stranger = sdk.Workspace("default", url=live_server.url, token="rs_not-a-token")
    with pytest.raises(sdk.AuthenticationException, match="invalid"):
        Experiment.list(stranger)
