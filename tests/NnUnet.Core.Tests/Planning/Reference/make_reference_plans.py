"""Makes reference_plans.json: nnU-Net v2's own ExperimentPlanner run on synthetic fingerprints.

Not part of the test run. To regenerate: put MIC-DKFZ/nnUNet's `nnunetv2/` and
MIC-DKFZ/dynamic-network-architectures' `dynamic_network_architectures/` on PYTHONPATH (Debian: python3-torch,
python3-numpy), then `python3 make_reference_plans.py > reference_plans.json`.
The planner is driven through its own plan_experiment(); only file access is stubbed out.
"""
import contextlib, io, json, os, sys, types
import numpy as np


def _stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def _compute_new_shape(old_shape, old_spacing, new_spacing):  # nnunetv2.preprocessing.resampling.default_resampling
    return np.array([int(round(i / j * k)) for i, j, k in zip(old_spacing, new_spacing, old_shape)])


_stub('batchgenerators'); _stub('batchgenerators.utilities')
_stub('batchgenerators.utilities.file_and_folder_operations', load_json=None, join=os.path.join, save_json=None,
      isfile=os.path.isfile, maybe_mkdir_p=None, isdir=os.path.isdir)
_stub('nnunetv2.imageio.reader_writer_registry', determine_reader_writer_from_dataset_json=None)
_stub('nnunetv2.paths', nnUNet_raw='/nonexistent', nnUNet_preprocessed='/nonexistent', nnUNet_results='/nonexistent')
def resample_data_or_seg_to_shape():  # only its __name__ goes into the plans
    raise NotImplementedError


_stub('nnunetv2.preprocessing.resampling.default_resampling', compute_new_shape=_compute_new_shape,
      resample_data_or_seg_to_shape=resample_data_or_seg_to_shape)
_stub('nnunetv2.utilities.dataset_name_id_conversion', maybe_convert_to_dataset_name=lambda x: x)
_stub('nnunetv2.utilities.utils', get_filenames_of_train_images_and_targets=None)
_stub('nnunetv2.utilities.json_export', recursive_fix_for_json_export=lambda x: None)
import shutil  # noqa: E402
import nnunetv2.experiment_planning.experiment_planners.default_experiment_planner as dep  # noqa: E402

shutil.copy = lambda *a, **k: None


def run_planner(case):
    p = dep.ExperimentPlanner.__new__(dep.ExperimentPlanner)
    # the attributes __init__ sets, without touching nnUNet_raw / nnUNet_preprocessed
    p.dataset_name, p.raw_dataset_folder, p.suppress_transpose = case['name'], '/nonexistent', False
    p.dataset_json = {'channel_names': {str(i): n for i, n in enumerate(case['channels'])},
                      'labels': {('background' if i == 0 else f'label{i}'): i for i in range(case['num_labels'])},
                      'numTraining': case['num_training']}
    p.dataset_fingerprint = case['fingerprint']
    p.anisotropy_threshold = 3
    p.UNet_base_num_features, p.UNet_class = 32, dep.PlainConvUNet
    p.UNet_reference_val_3d, p.UNet_reference_val_2d = 560000000, 85000000
    p.UNet_reference_com_nfeatures, p.UNet_reference_val_corresp_GB = 32, 8
    p.UNet_reference_val_corresp_bs_2d, p.UNet_reference_val_corresp_bs_3d = 12, 2
    p.UNet_featuremap_min_edge_length = 4
    p.UNet_blocks_per_stage_encoder, p.UNet_blocks_per_stage_decoder = (2,) * 14, (2,) * 13
    p.UNet_min_batch_size, p.UNet_max_features_2d, p.UNet_max_features_3d = 2, 512, 320
    p.max_dataset_covered, p.UNet_vram_target_GB = 0.05, case['gpu_memory_gb']
    p.lowres_creation_threshold, p.preprocessor_name, p.plans_identifier = 0.25, 'DefaultPreprocessor', 'nnUNetPlans'
    p.overwrite_target_spacing, p.plans = None, None
    p.determine_reader_writer = lambda: type('SimpleITKIO', (), {})
    p.save_plans = lambda plans: None
    with contextlib.redirect_stdout(io.StringIO()):
        plans = p.plan_experiment()
    return json.loads(json.dumps(plans, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else o.item()))


def fingerprint(rng, n, spacing, spacing_jitter, shape, shape_jitter, channels, relative_size):
    spacings = [[float(np.float32(s * (1 + spacing_jitter[d] * rng.uniform(-1, 1)))) for d, s in enumerate(spacing)] for _ in range(n)]
    shapes = [[max(1, int(round(s * (1 + shape_jitter[d] * rng.uniform(-1, 1))))) for d, s in enumerate(shape)] for _ in range(n)]
    props = {str(c): {'mean': 1.0, 'median': 1.0, 'std': 1.0, 'min': 0.0, 'max': 2.0, 'percentile_99_5': 1.9,
                      'percentile_00_5': 0.1} for c in range(channels)}
    return {'foreground_intensity_properties_per_channel': props, 'median_relative_size_after_cropping': relative_size,
            'shapes_after_crop': shapes, 'spacings': spacings}


def make_cases():
    rng = np.random.RandomState(20240611)
    cases = []

    def case(name, channels, num_labels, gpu, n, spacing, sj, shape, shj, relative_size):
        fp = fingerprint(rng, n, spacing, sj, shape, shj, len(channels), relative_size)
        cases.append({'name': name, 'channels': channels, 'num_labels': num_labels, 'num_training': n,
                      'gpu_memory_gb': gpu, 'fingerprint': fp})

    case('lung_like', ['CT'], 2, 8, 63, [1.245, 0.785, 0.785], [0.4, 0.2, 0.2], [252, 512, 512], [0.3, 0, 0], 1.0)
    case('hippocampus_like', ['MRI'], 3, 8, 260, [1.0, 1.0, 1.0], [0, 0, 0], [36, 50, 35], [0.1, 0.1, 0.1], 1.0)
    case('prostate_like', ['T2', 'ADC'], 3, 8, 32, [3.6, 0.62, 0.62], [0.1, 0.05, 0.05], [20, 320, 320], [0.2, 0.0, 0.0], 0.9)
    case('acdc_like', ['cineMRI'], 4, 8, 200, [7.5, 1.5, 1.5], [0.34, 0.2, 0.2], [9, 256, 216], [0.2, 0.15, 0.15], 0.6)
    case('x_coarsest', ['CT'], 2, 8, 20, [0.8, 0.8, 4.0], [0.1, 0.1, 0.1], [300, 300, 60], [0.1, 0.1, 0.1], 0.95)
    case('natural_2d', ['R', 'G', 'B'], 2, 8, 100, [999.0, 1.0, 1.0], [0, 0, 0], [1, 600, 800], [0, 0.2, 0.2], 1.0)
    case('liver_like_24gb', ['CT'], 3, 24, 131, [1.0, 0.77, 0.77], [0.5, 0.2, 0.2], [432, 512, 512], [0.5, 0, 0], 0.8)
    case('tiny_dataset', ['CT'], 2, 8, 2, [1.0, 1.0, 1.0], [0, 0, 0], [64, 64, 64], [0, 0, 0], 1.0)
    case('huge_images_4gb', ['nonorm'], 2, 4, 10, [0.5, 0.5, 0.5], [0, 0, 0], [800, 800, 800], [0.1, 0.1, 0.1], 1.0)
    for i in range(8):
        n = int(rng.randint(3, 41))
        spacing = [float(rng.choice([0.5, 0.8, 1.0, 1.5, 2.5, 5.0])) for _ in range(3)]
        shape = [int(rng.randint(16, 400)) for _ in range(3)]
        channels = [str(rng.choice(['CT', 'T1', 'zscore', 'rescale_to_0_1'])) for _ in range(int(rng.randint(1, 4)))]
        case(f'random_{i}', channels, int(rng.randint(2, 6)), float(rng.choice([4, 8, 11, 40])), n, spacing,
             [0.3, 0.3, 0.3], shape, [0.3, 0.3, 0.3], float(rng.uniform(0.5, 1.0)))
    return cases


if __name__ == '__main__':
    result = []
    for c in make_cases():
        result.append({'input': c, 'plans': run_planner(c)})
    json.dump(result, sys.stdout, separators=(',', ':'))
