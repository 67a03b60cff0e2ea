"""The feedback loop simulated on yoochoose-100k (offline/evaluation/loop.py), in a small
form: the counters the consumer's write path keeps equal what the loop showed and the
simulated user clicked, and a bandit moves its traffic to the arm that is clicked more.
The full figures are in docs/quality.md (``recstream eval --protocol loop``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner

from recstream.model.config import CoreConfig
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.loop import LoopSetup, simulate_loop
from recstream.offline.evaluation.protocol import group_sessions
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import build_state, landmark_for
from recstream.scoring.config import BlendWeights, ScoringConfig
from recstream.scoring.experiments import Experiment
from recstream.store.memory import MemoryStore
from recstream_cli.main import cli

YOOCHOOSE = Path("yoochoose-100k")
TRAIN_EVENTS = 20_000
CASES = 800


@pytest.fixture(scope="module")
def data(datasets: Path) -> tuple[list, list]:
    with (datasets / YOOCHOOSE / "yoochoose-clicks-100k_train_full.txt").open() as lines:
        train = list(itertools.islice(session_tsv_events(lines), TRAIN_EVENTS))
    with (datasets / YOOCHOOSE / "yoochoose-clicks-100k_test.txt").open() as lines:
        test = list(session_tsv_events(lines))
    return train, test


async def test_the_counters_are_what_was_shown_and_clicked_and_the_bandit_learns(
    data: tuple[list, list],
) -> None:
    """Two arms: the blend, and weights on the content component alone (yoochoose has no
    catalogue, so that list is popularity back-fill): the bandit's traffic moves to the
    blend, whose lists are clicked far more often."""
    train, test = data
    # only clicks that name their list: the counters are then exactly the loop's clicks
    core = CoreConfig(decay_landmark=landmark_for(train), attribution_fallback=False)
    arms = (BlendWeights(), BlendWeights(content=1, sequential=0, session=0))
    experiment = Experiment.model_validate(
        {
            "id": "sim",
            "exploration": 0.05,
            "variants": [
                {"name": "blend", "share": 0.2, "weights": arms[0]},
                {"name": "content", "share": 0.2, "weights": arms[1]},
                {"name": "bandit", "share": 0.6, "arms": arms},
            ],
        }
    )
    store = MemoryStore()
    log = RecordLog("interactions", 4)
    assert not (await build_state(store, train, log, core)).dead_letters
    sessions = group_sessions(test, core.session_gap_minutes * 60.0)
    setup = LoopSetup(core, ScoringConfig(), experiment, k=10, max_cases=CASES)

    result = await simulate_loop(store, sessions, log, setup)

    assert result.cases == CASES
    assert result.counters == result.tally, "the consumer's counters are what the loop saw"
    assert sum(r.total for r in result.counters.values()) > 0.9 * CASES
    blend, content = result.counters["sim:blend"], result.counters["sim:content"]
    assert blend.value > content.value + 0.1, (blend, content)
    late = result.arm_shares[-3:]
    assert sum(part["sim:bandit.0"] for part in late) / len(late) > 0.7, result.arm_shares


def test_the_loop_protocol_writes_its_report(datasets: Path, tmp_path: Path) -> None:
    train = datasets / YOOCHOOSE / "yoochoose-clicks-100k_train_full.txt"
    out = tmp_path / "loop"
    args = ["eval", "--protocol", "loop", "--train", str(train), "--cases", "60", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "the feedback loop, simulated" in report
    assert "| sim:bandit.3 |" in report
    assert "60 lists shown" in report
