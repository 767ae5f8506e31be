"""Trailer mapping: reading ml-youtube.csv, the VT2 cleaning rules with their report, local folders."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.data.errors import DataFormatError
from recsys.data.trailers import (
    clean_youtube_mapping,
    download_youtube_trailers,
    duration_seconds,
    read_id_list,
    read_youtube_mapping,
    trailer_paths,
    youtube_download_commands,
    youtube_ids_for,
)


def _dropped(report: pd.DataFrame) -> dict:
    return report.set_index("rule")["dropped"].to_dict()


def test_real_mapping_and_availability(shared_data_dir):
    folder = shared_data_dir / "ml-20m-youtube"
    mapping = read_youtube_mapping(folder / "ml-youtube.csv")
    assert len(mapping) == 25_623 and mapping["item_id"].nunique() == 25_623
    assert mapping.loc[0, ["youtube_id", "item_id"]].tolist() == ["K26_sDKnvMU", 1]
    kept, report = clean_youtube_mapping(mapping)
    rules = _dropped(report)
    assert rules["malformed YouTube id"] == 1  # "XEH06oFfJSY/" in the public file
    assert not report.set_index("rule").loc["duration > 10 min (no duration metadata)", "applied"]
    assert report["remaining"].iloc[-1] == len(kept) == 25_623 - sum(rules.values())
    availability = read_youtube_mapping(folder / "youtube_availability.csv")
    kept, report = clean_youtube_mapping(availability, available_ids=read_id_list(folder / "ml20myt_available.txt"))
    assert _dropped(report)["unavailable (status code != 200)"] == 25_623 - 19_112
    assert len(kept) <= 19_112


def test_vt2_rules_on_generated_metadata(tmp_path):
    path = tmp_path / "ml-youtube.csv"
    path.write_text(
        "youtubeId,movieId,title\n"
        "AAAAAAAAAAA,1,Toy Story (1995)\nBBBBBBBBBBB,2,Jumanji (1995)\n"
        "CCCCCCCCCCC,3,Heat (1995)\nDDDDDDDDDDD,4,Casino (1995)\nEEEEEEEEEEE,5,Babe (1995)\n"
    )
    mapping = read_youtube_mapping(path)
    metadata = pd.DataFrame(
        {
            "youtube_id": ["AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC", "DDDDDDDDDDD", "EEEEEEEEEEE"],
            "title": [
                "Toy Story - Trailer",
                "Jumanji FULL MOVIE HD",
                "Heat part 2 of 12",
                "Casino official trailer",
                "Babe trailer",
            ],
            "duration": ["PT2M30S", "PT1H40M", "600", "PT10M1S", 95],
        }
    )
    kept, report = clean_youtube_mapping(mapping, metadata=metadata)
    assert kept["item_id"].tolist() == [1, 5]
    rules = _dropped(report)
    assert rules["'full movie' in video title"] == 1
    assert rules["'part N of M' in video title"] == 1
    assert rules["duration > 10 min"] == 1  # 10:01 goes; exactly 600 s would stay
    assert duration_seconds(pd.Series(["PT1H2M3S", "42", "P1DT1S", "nonsense"])).tolist()[:3] == [3723, 42, 86401]


def test_mapping_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("youtubeId,movieId,title\nAAAAAAAAAAA,1,A\nBBBBBBBBBBB,two,B\n")
    with pytest.raises(DataFormatError, match=r"bad\.csv:3: movieId 'two'"):
        read_youtube_mapping(path)
    path.write_text("id,movie\nA,1\n")
    with pytest.raises(DataFormatError, match=r"bad\.csv:1: header"):
        read_youtube_mapping(path)
    with pytest.raises(FileNotFoundError, match="ml-20m-youtube"):
        read_youtube_mapping(tmp_path / "absent.csv")


def test_local_folder_ids_and_yt_dlp_explanation(tmp_path):
    (tmp_path / "10.mp4").write_bytes(b"x")
    (tmp_path / "11.webm").write_bytes(b"x")
    (tmp_path / "12.mp4").write_bytes(b"")  # empty file: not a trailer
    paths = trailer_paths([10, 11, 12, 13], tmp_path)
    assert paths.notna().tolist() == [True, True, False, False]
    mapping = pd.DataFrame({"youtube_id": ["AAAAAAAAAAA"], "item_id": [260], "title": ["Star Wars"]})
    items = pd.DataFrame(
        {"title": ["Star Wars (1977)", "x"], "ml1m_movie_id": pd.array([260, None], dtype="Int64")},
        index=pd.Index([50, 51], name="item_id"),
    )
    ids = youtube_ids_for(items, mapping)
    assert ids.loc[50] == "AAAAAAAAAAA" and ids.loc[51] is None
    commands = youtube_download_commands(ids, tmp_path)
    assert len(commands) == 1 and "50.%(ext)s" in commands[0] and "AAAAAAAAAAA" in commands[0]
    with pytest.raises(RuntimeError, match="yt-dlp"):
        download_youtube_trailers(ids, tmp_path)


@pytest.mark.parametrize(
    "bad_line, found",
    [
        ("BBBBBBBBBBB,2", 2),  # used to load with a blank title
        ("BBBBBBBBBBB,2,Title,extra,more", 5),  # used to blame movieId 'extra' (pandas shifted the columns)
    ],
)
def test_mapping_line_with_wrong_field_count_is_named(tmp_path, bad_line, found):
    path = tmp_path / "yt.csv"
    path.write_text(f'youtubeId,movieId,title\nAAAAAAAAAAA,1,"Title, with comma"\n{bad_line}\n')
    with pytest.raises(DataFormatError, match=rf"yt\.csv:3: malformed line: expected 3 fields .* found {found}"):
        read_youtube_mapping(path)
