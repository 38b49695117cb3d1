"""cnn.data: Dataset, TensorDataset, default_collate and DataLoader (batching, shuffling, seeds).

Worker processes are in test_workers.py; the other datasets and samplers in test_datasets_utils.py
and test_samplers.py."""
import numpy as np
import pytest

import cnn
from cnn.data import (ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset, Subset,
                      TensorDataset, default_collate, default_convert, random_split)


def indices_of(loader):
    """The sample indices one epoch of ``loader`` visits, in order (datasets of ``ranged``)."""
    return np.concatenate([batch[1] for batch in loader]).tolist()


def ranged(n=10):
    """A TensorDataset whose second array is the sample index."""
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


class Squares(Dataset):
    """A per-sample dataset without batch indexing; it records the indices it is asked for."""

    def __init__(self, n):
        self.n = n
        self.requested = []

    def __getitem__(self, index):
        self.requested.append(index)
        return np.full((2, 2), index, dtype=np.float32), index * index

    def __len__(self):
        return self.n


# ***** Dataset and TensorDataset *****

def values(batch_part):
    """A batch's Tensor (or array) as a list."""
    return np.asarray(batch_part).tolist()


def test_dataset_is_an_interface():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]  # as PyTorch's, the base class can be made but not indexed
    assert len(Squares(3)) == 3 and Squares(3)[2][1] == 4


def test_tensor_dataset_indexing():
    x, y = np.arange(12).reshape(6, 2), np.arange(6) * 10
    dataset = TensorDataset(x, y)
    assert len(dataset) == 6
    item = dataset[4]
    assert isinstance(item, tuple) and item[0].tolist() == [8, 9] and item[1] == 40
    batch = dataset[np.array([5, 0, 3])]
    assert batch[0].tolist() == [[10, 11], [0, 1], [6, 7]] and batch[1].tolist() == [50, 0, 30]
    assert dataset[1:3][1].tolist() == [10, 20]
    assert len(TensorDataset(x)[0]) == 1  # a 1-tuple, as PyTorch's


def test_tensor_dataset_wraps_tensors_without_copy():
    t = cnn.tensor(np.zeros((4, 3), np.float32))
    dataset = TensorDataset(t, [0, 1, 2, 3])
    assert np.shares_memory(dataset.tensors[0], t._data)
    assert dataset[3][1] == 3


@pytest.mark.parametrize("arrays, message", [
    ((np.zeros((3, 2)), np.zeros(4)), "same first dimension, got sizes 3, 4"),
    ((np.zeros(3), np.zeros(3), np.zeros(2)), "sizes 3, 3, 2"),
    ((), "at least one array"),
    ((np.zeros(3), np.float32(1.0)), "argument 1 is 0-dimensional"),
])
def test_tensor_dataset_rejects_bad_arrays(arrays, message):
    with pytest.raises(ValueError, match=message):
        TensorDataset(*arrays)


# ***** default_collate *****

def test_default_collate_structures():
    samples = [(np.ones(3, np.float32), 1, 0.5, "a", {"k": np.int16(2)}),
               (np.zeros(3, np.float32), 2, 1.5, "b", {"k": np.int16(3)})]
    batch = default_collate(samples)
    assert isinstance(batch, list)  # PyTorch's rule: tuple samples give a list
    images, ints, floats, names, mapping = batch
    assert isinstance(images, cnn.Tensor)
    assert images.shape == (2, 3) and images.dtype == np.float32
    assert ints.dtype == np.int64 and values(ints) == [1, 2]
    assert floats.dtype == np.float64
    assert names == ["a", "b"]
    assert mapping["k"].dtype == np.int16 and values(mapping["k"]) == [2, 3]
    assert isinstance(default_collate([[1, 2], [3, 4]]), list)
    stacked = default_collate([cnn.tensor([1.0, 2.0]), cnn.tensor([3.0, 4.0])])
    assert isinstance(stacked, cnn.Tensor) and stacked.shape == (2, 2)


def test_default_collate_errors():
    with pytest.raises(ValueError, match="should be of equal size"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(TypeError, match="object"):
        default_collate([object(), object()])


# ***** DataLoader: batching *****

def test_batches_in_order():
    loader = DataLoader(ranged(10), batch_size=3)
    assert len(loader) == 4
    batches = list(loader)
    assert [len(y) for _, y in batches] == [3, 3, 3, 1]
    assert indices_of(loader) == list(range(10))
    x, y = batches[1]
    assert isinstance(x, cnn.Tensor) and isinstance(batches[1], list)  # as PyTorch's
    assert x.dtype == np.float32 and values(x) == [[6, 7], [8, 9], [10, 11]]


def test_drop_last():
    loader = DataLoader(ranged(10), batch_size=3, drop_last=True)
    assert len(loader) == 3
    assert [len(y) for _, y in loader] == [3, 3, 3]
    assert len(DataLoader(ranged(9), batch_size=3, drop_last=True)) == 3
    assert len(DataLoader(ranged(2), batch_size=3, drop_last=True)) == 0
    assert list(DataLoader(ranged(2), batch_size=3, drop_last=True)) == []


def test_empty_dataset():
    loader = DataLoader(ranged(0), batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 0 and list(loader) == []


def test_batch_size_default_is_one():
    loader = DataLoader(ranged(3))
    assert len(loader) == 3 and [values(y) for _, y in loader] == [[0], [1], [2]]


def test_tensor_output_and_arrays_on_request():
    x, y = next(iter(DataLoader(ranged(10), batch_size=4)))
    assert isinstance(x, cnn.Tensor) and isinstance(y, cnn.Tensor)
    assert x.shape == (4, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert not x.requires_grad
    x, y = next(iter(DataLoader(ranged(10), batch_size=4, as_tensor=False)))
    assert type(x) is np.ndarray and type(y) is np.ndarray and y.tolist() == [0, 1, 2, 3]


def test_batch_fast_path_indexes_once_per_batch():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    dataset = Counting(np.arange(100), np.arange(100))
    assert len(list(DataLoader(dataset, batch_size=32, shuffle=True, seed=0))) == 4
    assert Counting.calls == 4


def test_generic_dataset_fallback():
    dataset = Squares(5)
    batches = list(DataLoader(dataset, batch_size=2))
    images, squares = batches[0]
    assert images.shape == (2, 2, 2) and images.dtype == np.float32
    assert squares.dtype == np.int64 and values(squares) == [0, 1]
    assert values(batches[2][1]) == [16]
    assert all(type(i) is int for i in dataset.requested)  # plain ints, never NumPy scalars
    x, y = next(iter(DataLoader(Squares(5), batch_size=2, as_tensor=True)))
    assert isinstance(x, cnn.Tensor) and isinstance(y, cnn.Tensor)


def test_plain_sequence_is_a_dataset():
    batches = list(DataLoader([(1, 0.5), (2, 1.5), (3, 2.5)], batch_size=2))
    assert values(batches[0][0]) == [1, 2] and values(batches[1][1]) == [2.5]


def test_collate_fn_gets_the_samples():
    seen = []

    def collate(samples):
        seen.append(samples)
        return len(samples)

    # A collate_fn expects samples, so even a batch-indexable dataset is fetched per sample.
    assert list(DataLoader(ranged(5), batch_size=2, collate_fn=collate)) == [2, 2, 1]
    assert len(seen[0]) == 2 and seen[0][1][1] == 1


# ***** DataLoader: shuffling and seeds *****

def test_shuffle_visits_every_sample_once_per_epoch():
    loader = DataLoader(ranged(103), batch_size=10, shuffle=True, seed=3)
    orders = [indices_of(loader) for _ in range(3)]
    for order in orders:
        assert sorted(order) == list(range(103))
    assert orders[0] != list(range(103))
    assert orders[0] != orders[1] != orders[2]


def test_shuffle_with_drop_last_visits_distinct_samples():
    order = indices_of(DataLoader(ranged(25), batch_size=4, shuffle=True, drop_last=True, seed=1))
    assert len(order) == 24 and len(set(order)) == 24


def test_same_seed_same_orders():
    first = DataLoader(ranged(50), batch_size=8, shuffle=True, seed=7)
    second = DataLoader(ranged(50), batch_size=8, shuffle=True, seed=7)
    assert [indices_of(first) for _ in range(3)] == [indices_of(second) for _ in range(3)]
    other = DataLoader(ranged(50), batch_size=8, shuffle=True, seed=8)
    assert indices_of(other) != indices_of(DataLoader(ranged(50), shuffle=True, seed=7))


def test_set_epoch_reproduces_an_epoch():
    loader = DataLoader(ranged(40), batch_size=5, shuffle=True, seed=11)
    assert loader.epoch == 0
    orders = [indices_of(loader) for _ in range(4)]
    assert loader.epoch == 4
    resumed = DataLoader(ranged(40), batch_size=5, shuffle=True, seed=11)
    resumed.set_epoch(2)
    assert resumed.epoch == 2
    assert indices_of(resumed) == orders[2]
    assert indices_of(resumed) == orders[3]  # and carries on from there


def test_epoch_is_taken_when_iteration_starts():
    loader = DataLoader(ranged(20), batch_size=5, shuffle=True, seed=0)
    iterator = iter(loader)
    assert loader.epoch == 1
    next(iterator)  # an epoch abandoned part-way still counts
    fresh = DataLoader(ranged(20), batch_size=5, shuffle=True, seed=0)
    fresh.set_epoch(1)
    assert indices_of(loader) == indices_of(fresh)


def test_unseeded_shuffle_follows_manual_seed():
    cnn.manual_seed(5)
    first = [indices_of(DataLoader(ranged(30), batch_size=4, shuffle=True)) for _ in range(2)]
    cnn.manual_seed(5)
    loader = DataLoader(ranged(30), batch_size=4, shuffle=True)
    assert [indices_of(loader) for _ in range(2)] == first
    assert first[0] != first[1]


def test_no_shuffle_draws_nothing_from_the_default_generator():
    cnn.manual_seed(0)
    state = cnn.get_rng_state()
    indices_of(DataLoader(ranged(10), batch_size=3))
    assert cnn.get_rng_state() == state


# ***** DataLoader: argument checks *****

@pytest.mark.parametrize("kwargs, error, name", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=-2), ValueError, "batch_size"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(batch_size=True), TypeError, "batch_size"),
    (dict(shuffle="yes"), TypeError, "shuffle"),
    (dict(drop_last=1), TypeError, "drop_last"),
    (dict(as_tensor=None), TypeError, "as_tensor"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=False), TypeError, "seed"),
    (dict(collate_fn=3), TypeError, "collate_fn"),
])
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        DataLoader(ranged(4), **kwargs)


def test_bad_dataset_and_epoch():
    with pytest.raises(TypeError, match="dataset"):
        DataLoader(5)
    loader = DataLoader(ranged(4), seed=np.int64(2))
    assert loader.seed == 2
    with pytest.raises(ValueError, match="epoch"):
        loader.set_epoch(-1)
    with pytest.raises(TypeError, match="epoch"):
        loader.set_epoch(1.0)


# ***** Subset, ConcatDataset, ChainDataset, random_split, IterableDataset *****

def test_subset_keeps_batch_indexing():
    subset = Subset(ranged(10), [7, 2, 5])
    assert len(subset) == 3 and subset[1][1] == 2 and subset.supports_batch_indexing
    assert subset[np.array([2, 0])][1].tolist() == [5, 7]
    assert indices_of(DataLoader(subset, batch_size=2)) == [7, 2, 5]
    assert not Subset(Squares(4), [0]).supports_batch_indexing
    with pytest.raises(TypeError, match="indices"):
        Subset(ranged(3), [0.5])


def test_concat_dataset():
    joined = ranged(3) + Squares(2)  # Dataset.__add__, as PyTorch's
    assert isinstance(joined, ConcatDataset) and len(joined) == 5
    assert joined.cumulative_sizes == [3, 5]
    assert joined[4][1] == 1 and joined[-5][1] == 0 and joined[2][1] == 2
    with pytest.raises(IndexError):
        joined[5]
    with pytest.raises(ValueError, match="at least one"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([Count(3)])


class Count(IterableDataset):
    """The stream 0, 1, ..., n - 1."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


def test_iterable_datasets_in_one_process():
    assert [values(b) for b in DataLoader(Count(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [values(b) for b in DataLoader(Count(7), batch_size=3, drop_last=True)] == [
        [0, 1, 2], [3, 4, 5]]
    assert list(DataLoader(Count(3), batch_size=None)) == [0, 1, 2]
    chained = Count(2) + Count(3)
    assert isinstance(chained, ChainDataset) and list(chained) == [0, 1, 0, 1, 2]
    for kwargs, name in [(dict(shuffle=True), "shuffle"), (dict(sampler=[0]), "sampler"),
                         (dict(batch_sampler=[[0]]), "batch_sampler")]:
        with pytest.raises(ValueError, match=f"expected unspecified {name} option"):
            DataLoader(Count(3), **kwargs)
    with pytest.raises(TypeError):
        len(DataLoader(Count(3)))  # no __len__: no length, as PyTorch's


def test_random_split_sizes_fractions_and_generator():
    cnn.manual_seed(0)
    parts = random_split(ranged(10), [3, 7])
    seen = sorted(parts[0].indices + parts[1].indices)
    assert [len(p) for p in parts] == [3, 7] and seen == list(range(10))
    assert [len(p) for p in random_split(ranged(10), [0.5, 0.3, 0.2])] == [5, 3, 2]
    assert [len(p) for p in random_split(ranged(11), [0.5, 0.5])] == [6, 5]  # round-robin rest
    generator = np.random.default_rng(3)
    fixed = random_split(ranged(6), [2, 4], generator=generator)
    assert fixed[0].indices == np.random.default_rng(3).permutation(6)[:2].tolist()
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ranged(10), [3, 3])
    with pytest.raises(TypeError, match="lengths"):
        random_split(ranged(10), ["a"])


def test_no_batching_and_default_convert():
    samples = list(DataLoader(Squares(3), batch_size=None))
    image, square = samples[2]
    assert isinstance(samples[2], list) and isinstance(image, cnn.Tensor) and square == 4
    converted = default_convert({"a": np.zeros(2), "b": (np.ones(1), 3), "s": "text"})
    assert isinstance(converted["a"], cnn.Tensor) and isinstance(converted["b"], list)
    assert converted["b"][1] == 3 and converted["s"] == "text"
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(Squares(3), batch_size=None, drop_last=True)


def test_named_tuples_and_pin_memory():
    import collections
    Pair = collections.namedtuple("Pair", "image label")
    batch = default_collate([Pair(np.zeros(2), 1), Pair(np.ones(2), 2)])
    assert type(batch) is Pair and values(batch.label) == [1, 2]
    loader = DataLoader(ranged(4), batch_size=2, pin_memory=True)  # accepted, no effect on CPU
    assert loader.pin_memory and indices_of(loader) == [0, 1, 2, 3]
