"""Names fixed by the official dataset layouts.

One definition for the data preparations (which read the real datasets)
and the synthetic generators (which write the same layouts).

Authors
 * speechbrain-relevance developers
"""

#: Folder of the DCASE2020 Task 1A development set.
DCASE_DIRNAME = "TAU-urban-acoustic-scenes-2020-mobile-development"

#: The ten acoustic scenes, in the order of the paper's Table 1.
DCASE_SCENES = (
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
)

#: Recording devices; s4-s6 appear only in the evaluation split.
DCASE_DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
DCASE_EVAL_ONLY_DEVICES = ("s4", "s5", "s6")
DCASE_REFERENCE_DEVICE = "a"

#: Folder of the UrbanSound8K dataset.
URBANSOUND_DIRNAME = "UrbanSound8K"

#: Official UrbanSound8K class names, indexed by their official classID.
URBANSOUND_CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)

#: Columns of ``metadata/UrbanSound8K.csv``, in the official order.
URBANSOUND_CSV_COLUMNS = (
    "slice_file_name",
    "fsID",
    "start",
    "end",
    "salience",
    "fold",
    "classID",
    "class",
)

#: The predefined cross-validation folds.
URBANSOUND_N_FOLDS = 10

#: Folder of the Free Spoken Digit Dataset (FSDD) that holds the clips,
#: named ``{digit}_{speaker}_{take}.wav``.
FSDD_RECORDINGS_DIRNAME = "recordings"

#: The six speakers of the FSDD release, sorted (more may be added; the
#: data preparation discovers the speakers from the file names).
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")

#: The ten class labels: the spoken digits, as strings.
FSDD_DIGITS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")

#: Every FSDD clip is mono 16-bit PCM at this rate.
FSDD_SAMPLE_RATE = 8000

#: Takes of every speaker and digit in the official test split (the
#: dataset's README); the recipe carves its validation split from takes
#: 5-9 and trains on takes 10 and above.
FSDD_OFFICIAL_TEST_TAKES = (0, 1, 2, 3, 4)
FSDD_OFFICIAL_VALID_TAKES = (5, 6, 7, 8, 9)
