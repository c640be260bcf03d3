"""Configuration from the environment: defaults that just work, and clear errors for bad values."""

from pathlib import Path

import pytest

from recs_assets.cli import main
from recs_assets.settings import Settings


def test_defaults_run_the_simulator_in_the_checkouts_home():
    settings = Settings.from_env({})
    assert settings.source == "simulator" and settings.data_dir is None
    assert settings.home == Path(__file__).resolve().parents[2] / ".recs_home"
    assert (settings.sim_users, settings.sim_days, settings.sim_preset) == (10_000, 30, "games")


def test_every_knob_is_read(tmp_path):
    (tmp_path / "shop").mkdir()
    settings = Settings.from_env({
        "RECS_HOME": str(tmp_path), "RECS_SOURCE": "files", "RECS_DATA_DIR": str(tmp_path / "shop"),
        "RECS_SIM_PRESET": "fashion", "RECS_SIM_SEED": "7", "RECS_SIM_USERS": "10", "RECS_SIM_ITEMS": "5",
        "RECS_SIM_DAYS": "3", "RECS_SIM_START_DATE": "2026-01-02", "RECS_SIM_SHIFT_DAY": "1",
    })
    assert settings.home == tmp_path and settings.data_dir == tmp_path / "shop"
    assert (settings.sim_preset, settings.sim_seed, settings.sim_users, settings.sim_items) == ("fashion", 7, 10, 5)
    assert settings.sim_start_date.isoformat() == "2026-01-02" and settings.sim_shift_day == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECS_SOURCE": "kaggle"}, "RECS_SOURCE must be one of simulator, movielens_100k, steam_200k, files"),
        ({"RECS_SOURCE": "files"}, "needs RECS_DATA_DIR"),
        ({"RECS_SIM_USERS": "many"}, "RECS_SIM_USERS must be a whole number, got 'many'"),
        ({"RECS_SIM_DAYS": "0"}, "RECS_SIM_DAYS must be at least 1"),
        ({"RECS_SIM_START_DATE": "next monday"}, "RECS_SIM_START_DATE must be a date"),
        ({"RECS_SIM_PRESET": "cars"}, "RECS_SIM_PRESET must be games or fashion"),
    ],
)
def test_bad_configuration_is_named(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_make_run_reports_bad_configuration_without_a_traceback(home, monkeypatch, capsys):
    monkeypatch.setenv("RECS_SOURCE", "kaggle")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: RECS_SOURCE must be one of") and "Traceback" not in err


def test_a_missing_dataset_folder_is_reported_without_a_traceback(home, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RECS_SOURCE", "movielens_100k")
    monkeypatch.setenv("RECS_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["run"]) == 2
    captured = capsys.readouterr()
    assert "configuration error: RECS_DATA_DIR" in captured.err and "does not exist" in captured.err
    assert "Traceback" not in captured.out + captured.err and "Outputs:" not in captured.out


def test_a_home_that_is_a_file_and_an_unknown_protocol_are_refused_in_one_line(tmp_path):
    import pytest

    from recs_assets.settings import Settings

    afile = tmp_path / "home.txt"
    afile.write_text("not a folder")
    with pytest.raises(ValueError, match="RECS_HOME must be a folder"):
        Settings.from_env({"RECS_HOME": str(afile)})
    with pytest.raises(ValueError, match="RECS_PROTOCOL must be one of"):
        Settings.from_env({"RECS_HOME": str(tmp_path), "RECS_PROTOCOL": "yesterday"})
    assert Settings.from_env({"RECS_HOME": str(tmp_path), "RECS_PROTOCOL": "temporal"}).protocol == "temporal"


def test_the_csv_delimiter_is_set_by_name_and_reaches_the_files_reader(tmp_path):
    import pytest

    from recs_assets.settings import Settings
    from resources.marketplace_source import MarketplaceSource

    assert Settings.from_env({"RECS_HOME": str(tmp_path), "RECS_CSV_DELIMITER": "tab"}).csv_delimiter == "\t"
    with pytest.raises(ValueError, match="RECS_CSV_DELIMITER must be one of"):
        Settings.from_env({"RECS_HOME": str(tmp_path), "RECS_CSV_DELIMITER": "x"})
    shop = tmp_path / "shop"
    shop.mkdir()
    # Semicolons inside a comma-separated file: only the configured delimiter reads it as intended.
    (shop / "events.csv").write_text("event_id|event_at|user_id|event_type|query\ne1|2026-09-01T10:00:00Z|u1|search|a;b,c\n")
    events = MarketplaceSource(kind="files", data_dir=str(shop), csv_delimiter="|").load_raw_events()
    assert events.height == 1 and events["query"][0] == "a;b,c"
