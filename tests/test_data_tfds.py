"""The pipelines of tfds' own builders (Flowers 102, VOC labels) on tfds.testing.mock_data,
a damaged prepared dataset, and TensorFlow kept off the GPUs."""

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxvision.data import DataError, build_pipelines, default_data_config, make_pipelines, resolve_data_config
from jaxvision.data.sources import Source, one_hot

NUM_MOCK = 10  # mock examples per split


def make_config(tmp_path, **data):
    config = ml_collections.ConfigDict(dict(seed=0, batch_size=4, eval_batch_size=4))
    config.data = default_data_config()
    config.data.update(dict(data_dir=str(tmp_path), image_size=24, prefetch_to_device=0))
    config.data.update(data)
    return config


def valid_rows(batches, key):
    return [row for b in batches for row, v in zip(b[key].reshape(-1, *b[key].shape[2:]), b["valid"].ravel()) if v]


def test_tensorflow_sees_no_gpu():
    assert tf.config.get_visible_devices("GPU") == []


def test_flowers_pipeline_on_mock_data(tmp_path):
    config = make_config(
        tmp_path, name="oxford_flowers102", train_crop="inception", eval_crop="central", value_range=(-1.0, 1.0)
    )
    with tfds.testing.mock_data(num_examples=NUM_MOCK):
        p = make_pipelines(config)
        train = list(p.train(0))
        test = list(p.evals["test"]())
    assert p.info.num_classes == 102 and p.info.class_names[0] == "pink primrose" and not p.info.multi_label
    assert p.info.num_examples == {"train": NUM_MOCK, "validation": NUM_MOCK, "test": NUM_MOCK}
    assert len(train) == p.steps_per_epoch == NUM_MOCK // 4
    assert train[0]["image"].shape == (4, 1, 24, 24, 3) and "mask" not in train[0]
    assert -1.0 <= min(b["image"].min() for b in train) and max(b["image"].max() for b in train) <= 1.0
    labels = np.stack(valid_rows(test, "label"))
    assert labels.shape == (NUM_MOCK, 102)
    np.testing.assert_array_equal(labels.sum(-1), np.ones(NUM_MOCK))  # one-hot
    assert len(test) == p.eval_steps["test"] == 3  # 10 examples, padded to 3 batches of 4


def test_voc_multilabel_pipeline_on_mock_data(tmp_path):
    config = make_config(tmp_path, name="voc_multilabel", voc=dict(builder="tfds", year=2007))
    chosen = [7, 13, 4]  # cat, motorbike, bottle in tfds' voc class order
    with tfds.testing.mock_data(num_examples=NUM_MOCK):
        p = make_pipelines(config)
        rows = valid_rows(p.evals["validation"](), "label")
        # Mock examples depend on the features read: read those the pipeline reads.
        features = tfds.decode.PartialDecoding(
            {"image": True, "labels": True, "image/filename": True}, decoders={"image": tfds.decode.SkipDecoding()}
        )
        mock = tfds.builder("voc/2007", data_dir=str(tmp_path)).as_dataset(split="validation", decoders=features)
        expected = [[float(k in set(e["labels"].tolist())) for k in chosen] for e in tfds.as_numpy(mock)]
    expected = [row for row in expected if any(row)]  # images without a chosen class are left out
    assert p.info.class_names == ("cat", "motorbike", "bottle") and p.info.multi_label
    assert p.info.num_examples["validation"] == len(expected) > 0
    assert sorted(map(tuple, rows)) == sorted(map(tuple, expected))


def test_tfds_voc_has_only_2007_and_2012(tmp_path):
    with pytest.raises(ValueError, match="tfds' voc has the years 2007 and 2012 only"):
        make_pipelines(make_config(tmp_path, name="voc_multilabel", voc=dict(builder="tfds", year=2009)))


class DamagedImages(tfds.core.GeneratorBasedBuilder):
    """Stands in for a prepared dataset whose stored image bytes were damaged afterwards."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(num_classes=2),
                    "name": tfds.features.Text(),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(6):
            image = np.full((8, 8, 3), 40 * i, np.uint8)
            # tfds stores bytes as given: example 4 holds bytes that are no image.
            yield i, {"image": b"not an image" if i == 4 else image, "label": i % 2, "name": f"photo_{i}.png"}


def test_damaged_stored_image_names_the_example(tmp_path):
    builder = DamagedImages(data_dir=str(tmp_path))
    builder.download_and_prepare()
    source = Source(
        "damaged",
        builder,
        ("train",),
        ("a", "b"),
        multi_label=False,
        has_mask=False,
        features=("image", "label", "name"),
        parse=lambda ex: {"image": ex["image"], "label": one_hot(ex["label"], 2), "name": ex["name"]},
    )
    data = resolve_data_config(dict(image_size=8, prefetch_to_device=0, eval_splits=("train",)))
    p = build_pipelines(
        source,
        data,
        seed=0,
        batch_size=2,
        eval_batch_size=2,
        process_index=0,
        process_count=1,
        devices=jax.local_devices()[:1],
    )
    with pytest.raises(DataError, match="photo_4.png of damaged \\(train\\) cannot be read"):
        list(p.evals["train"]())
