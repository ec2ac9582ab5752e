#!/usr/bin/env python3
"""Writes the small spreadsheet fixtures of mex-data's loader tests in the published formats,
with every quirk the loaders handle. Run once; the outputs are committed under
crates/mex-data/tests/fixtures/. Needs openpyxl (pip install openpyxl).

Quirks reproduced:
* CASME II coding sheet: blank header cells (pandas' "Unnamed: 2"/"Unnamed: 6"), '/' apex,
  integer Subject (-> subNN), lower-case emotions, a blank row, and the three MEGC exclusions.
* SAMM: 13 text preamble rows before the header row, Subject 6 -> '006', an apex of -1,
  capitalised emotions incl. 'Other'.
* CAS(ME)^2 code_final: sheet 0 without header, 'macro-expression'/'micro-expression',
  offset 0 (=> apex is the end), sheet 1 subject naming, sheet 2 video naming with a text code
  '0101' and a numeric code 401 (Excel drops the leading zero).
* SAMM Long Videos: 10 preamble rows, Type 'Macro' / 'Micro - 1/2'.
* Broken variants: missing ApexFrame column; a non-numeric OnsetFrame cell.
"""
import os
from openpyxl import Workbook

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "mex-data", "tests", "fixtures")


def save(wb, name):
    path = os.path.join(OUT, name)
    wb.save(path)
    print("wrote", os.path.normpath(path))


CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion"]
CASME2_ROWS = [
    [1, "EP02_01f", None, 46, 59, 86, None, "12", "happiness"],
    [1, "EP03_02", None, 131, 139, 161, None, "L10", "others"],
    [2, "EP01_11f", None, 46, "/", 91, None, "R12+25", "repression"],
    None,  # blank row
    [4, "EP12_01f", None, 10, 20, 40, None, "4", "disgust"],
    [5, "EP12_03f", None, 101, 120, 140, None, "4+7", "repression"],
    [17, "EP15_03f", None, 30, 41, 60, None, "1+2", "surprise"],
    [24, "EP02_07", None, 12, 30, 52, None, "9", "disgust"],
    [26, "EP18_51", None, 80, 95, 110, None, "4+15", "sadness"],
    [26, "EP18_52", None, 15, 22, 48, None, "4", "fear"],
]


def casme2(name, header, rows):
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(header)
    for r in rows:
        ws.append(r if r is not None else [])
    save(wb, name)


def samm():
    wb = Workbook()
    ws = wb.active
    ws.title = "FACS_Movement_Only"
    pre = ["SAMM - Spontaneous Actions and Micro-Movements", "", "Micro-Movement FACS Coding",
           "Coders: (redacted)", "Version 2", "", "Notes:", "Frames are numbered per subject", "",
           "Inducement codes see paper", "", "", ""]
    for line in pre:
        ws.append([line] if line else [])
    ws.append(["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"])
    ws.append([6, "006_1_2", 1, 5562, 5588, 5632, 71, "Micro - 1/2", "4+7", "Anger", 4, None])
    ws.append([6, "006_1_3", 1, 3912, 3948, 3988, 77, "Micro - 1/2", "R14", "Contempt", 4, None])
    ws.append([7, "007_3_1", 3, 2245, 2270, 2301, 57, "Micro - 1/2", "6+12", "Happiness", 1, None])
    ws.append([9, "009_2_1", 2, 1001, -1, 1050, 50, "Micro - 1/2", "4", "Other", 7, "apex not coded"])
    ws.append([11, "011_2_3", 2, 400, 420, 460, 61, "Micro - 1/2", "1+2", "Surprise", 5, None])
    save(wb, "samm_codes.xlsx")


def casme_sq():
    wb = Workbook()
    ws = wb.active
    ws.title = "FACS"
    ws.append([1, "disgustingteeth_1", 557, 572, 608, "4+10", "negative", "macro-expression", "disgust"])
    ws.append([1, "disgustingteeth_1", 1200, 1210, 0, "12", "positive", "micro-expression", None])
    ws.append([2, "anger1_1", 30, 41, 55, "4", "negative", "micro-expression", "anger"])
    s1 = wb.create_sheet("subject")
    s1.append(["Eileen", 15, 1])
    s1.append(["Frank", 16, 2])
    s2 = wb.create_sheet("video")
    s2.append(["0101", "disgustingteeth"])
    s2.append([401, "anger1"])
    save(wb, "casme_sq_code_final.xlsx")


def samm_lv():
    wb = Workbook()
    ws = wb.active
    ws.title = "SAMM_LongVideos"
    for i in range(10):
        ws.append([f"preamble line {i}"] if i % 3 == 0 else [])
    ws.append(["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
               "Action Units", "Notes"])
    ws.append([6, "006_1_1", 1, 566, 648, 743, 178, "Macro", "4+7", None])
    ws.append([6, "006_1_2", 1, 3000, 3030, 3080, 81, "Micro - 1/2", "12", None])
    ws.append([7, "007_5_1", 5, 100, -1, 180, 81, "Macro", "1+2", "apex unclear"])
    save(wb, "samm_lv.xlsx")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    casme2("casme2_coding.xlsx", CASME2_HEADER, CASME2_ROWS)
    casme2("casme2_missing_apex_column.xlsx",
           [c for c in CASME2_HEADER if c != "ApexFrame"],
           [[c for i, c in enumerate(r) if i != 4] for r in CASME2_ROWS if r is not None])
    bad = [list(r) for r in CASME2_ROWS if r is not None]
    bad[1][3] = "abc"
    casme2("casme2_bad_onset.xlsx", CASME2_HEADER, bad)
    samm()
    casme_sq()
    samm_lv()
