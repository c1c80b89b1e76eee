"""FLAME, the head model the th pipeline drives: model-file loading, the posing layer and 3-D landmarks.

model_file      load_flame_model(path) -> FlameModelData (chumpy-free, scipy-free .pkl or .npz)
layer           FlameLayer(data, n_shape, n_expression)(shape, expression, pose, translation) -> vertices, joints
landmark_files  read_ringnet_embedding / read_deca_embedding -> LandmarkEmbedding
landmarks       FlameLandmarks(embedding, faces)(vertices, pose) -> 68 iBUG landmarks
pickle_compat   the restricted unpickler behind the readers
rotation        axis-angle -> matrix, yaw
"""

from pipelines.th.flame.landmark_files import LandmarkEmbedding, read_deca_embedding, read_ringnet_embedding
from pipelines.th.flame.landmarks import FlameLandmarks, contour_bins, vertices_to_landmarks
from pipelines.th.flame.layer import POSE_SIZE, FlameLayer, FlameOutput, compose_pose
from pipelines.th.flame.model_file import FlameModelData, load_flame_model

__all__ = [
    "POSE_SIZE",
    "FlameLandmarks",
    "FlameLayer",
    "FlameModelData",
    "FlameOutput",
    "LandmarkEmbedding",
    "compose_pose",
    "contour_bins",
    "load_flame_model",
    "read_deca_embedding",
    "read_ringnet_embedding",
    "vertices_to_landmarks",
]
