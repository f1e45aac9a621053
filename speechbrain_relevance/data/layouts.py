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
