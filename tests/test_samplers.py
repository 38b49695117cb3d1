"""cnn.utils.data samplers and the DataLoader's sampler / batch_sampler (PyTorch's semantics),
and the data room's place: cnn.data is cnn.utils.data."""
import numpy as np
import pytest

import cnn
from cnn.utils.data import (BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler,
                            SubsetRandomSampler, TensorDataset, WeightedRandomSampler)


def ranged(n=10):
    """A TensorDataset whose second array is the sample index."""
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


def indices_of(loader):
    return [np.asarray(batch[1]).tolist() for batch in loader]


def test_cnn_data_is_cnn_utils_data():
    import cnn.data
    import cnn.data.loader
    from cnn.data import DataLoader as Alias

    assert cnn.data is cnn.utils.data
    assert cnn.data.loader is cnn.utils.data.loader
    assert Alias is DataLoader


def test_sequential_and_batch_sampler_as_torch_documents():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert len(SequentialSampler(range(4))) == 4
    batches = BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(batches) == 4
    dropped = BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=True)
    assert list(dropped) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and len(dropped) == 3
    assert list(BatchSampler(iter([5, 1]), 4, False)) == [[5, 1]]  # any iterable
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size should be a positive integer"):
            BatchSampler(range(3), bad, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, 1)
    with pytest.raises(NotImplementedError):
        iter(Sampler())


def test_samplers_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import BatchSampler as TorchBatchSampler
    from torch.utils.data import SequentialSampler as TorchSequentialSampler

    for size, batch, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                              (0, 2, False)]:
        ours = BatchSampler(SequentialSampler(range(size)), batch, drop)
        theirs = TorchBatchSampler(TorchSequentialSampler(range(size)), batch, drop)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    dataset = TensorDataset(np.arange(12.0), np.arange(12))
    torch_dataset = torch.utils.data.TensorDataset(torch.arange(12.0), torch.arange(12))
    for kwargs in (dict(sampler=[3, 1, 4, 1, 5], batch_size=2),
                   dict(batch_sampler=[[0, 2], [4, 6, 8], [11]]),
                   dict(sampler=SequentialSampler(range(7)), batch_size=3, drop_last=True)):
        ours = [np.asarray(y).tolist() for _, y in DataLoader(dataset, **kwargs)]
        theirs = [y.tolist() for _, y in torch.utils.data.DataLoader(torch_dataset, **kwargs)]
        assert ours == theirs


def test_random_sampler_permutes_and_draws_from_the_default_generator():
    cnn.manual_seed(3)
    sampler = RandomSampler(range(20))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(20)) and first != second
    cnn.manual_seed(3)
    assert list(RandomSampler(range(20))) == first
    assert all(type(index) is int for index in first)


def test_random_sampler_seed_epochs_and_generator():
    sampler = RandomSampler(range(30), seed=4)
    epochs = [list(sampler) for _ in range(3)]
    assert sampler.epoch == 3
    expected = np.random.default_rng(np.random.SeedSequence(4, spawn_key=(1,))).permutation(30)
    assert epochs[1] == expected.tolist()  # epoch k from the k-th child of SeedSequence(seed)
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1]
    generator = np.random.default_rng(0)
    drawn = list(RandomSampler(range(30), generator=generator))
    assert drawn == np.random.default_rng(0).permutation(30).tolist()
    with pytest.raises(ValueError, match="seed, generator"):
        RandomSampler(range(3), generator=generator, seed=1)
    with pytest.raises(TypeError, match="generator"):
        RandomSampler(range(3), generator=4)


def test_random_sampler_num_samples_and_replacement():
    longer = list(RandomSampler(range(4), num_samples=10, seed=0))
    assert len(longer) == 10
    assert sorted(longer[:4]) == sorted(longer[4:8]) == [0, 1, 2, 3]  # whole permutations first
    assert len(set(longer[8:])) == 2
    drawn = RandomSampler(range(3), replacement=True, num_samples=50, seed=0)
    values = list(drawn)
    assert len(values) == len(drawn) == 50 and set(values) == {0, 1, 2}
    assert list(RandomSampler(range(0), seed=0)) == []
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(range(3), replacement=1)


def test_the_loader_builds_the_samplers_of_its_arguments():
    loader = DataLoader(ranged(10), batch_size=4, shuffle=True, seed=2)
    assert type(loader.sampler) is RandomSampler and loader.sampler.seed == 2
    assert type(loader.batch_sampler) is BatchSampler and loader.batch_sampler.batch_size == 4
    assert type(DataLoader(ranged(10)).sampler) is SequentialSampler
    # The same epochs as a loader given those samplers by hand.
    by_hand = DataLoader(ranged(10), batch_sampler=BatchSampler(RandomSampler(ranged(10),
                                                                              seed=2), 4, False))
    assert [indices_of(loader) for _ in range(3)] == [indices_of(by_hand) for _ in range(3)]
    by_hand.set_epoch(1)
    loader.set_epoch(1)
    assert indices_of(by_hand) == indices_of(loader)


def test_a_sampler_or_batch_sampler_sets_the_order():
    loader = DataLoader(ranged(10), batch_size=3, sampler=[9, 0, 8, 1, 7])
    assert indices_of(loader) == [[9, 0, 8], [1, 7]] and len(loader) == 2
    loader = DataLoader(ranged(10), batch_sampler=[[5], [4, 3], []])
    assert loader.batch_size is None and loader.drop_last is False
    assert indices_of(loader) == [[5], [4, 3], []]
    assert len(loader) == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(sampler=[0], shuffle=True), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], sampler=[0]), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(sampler=[0], seed=1), "seed"),
    (dict(batch_sampler=[[0]], seed=1), "seed"),
])
def test_options_a_sampler_replaces_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(ranged(4), **kwargs)


def test_set_epoch_reaches_a_batch_sampler_that_has_it():
    class Recording:
        def __init__(self):
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter([[0]])

        def __len__(self):
            return 1

    batches = Recording()
    loader = DataLoader(ranged(3), batch_sampler=batches)
    list(loader)
    loader.set_epoch(7)
    list(loader)
    assert batches.epochs == [0, 7] and loader.epoch == 8


def test_subset_random_sampler():
    cnn.manual_seed(0)
    sampler = SubsetRandomSampler([10, 20, 30, 40])
    first, second = list(sampler), list(sampler)
    assert sorted(first) == [10, 20, 30, 40] and len(sampler) == 4 and first != second
    generator = np.random.default_rng(1)
    drawn = list(SubsetRandomSampler([5, 6, 7], generator=generator))
    assert drawn == [[5, 6, 7][i] for i in np.random.default_rng(1).permutation(3)]
    with pytest.raises(TypeError, match="generator"):
        SubsetRandomSampler([1], generator=3)


def test_weighted_random_sampler():
    cnn.manual_seed(0)
    sampler = WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=4000)
    counts = np.bincount(list(sampler), minlength=3)
    assert len(sampler) == 4000 and counts[0] == 0 and 2.6 < counts[2] / counts[1] < 3.4
    once = list(WeightedRandomSampler([1, 1, 5, 0], 3, replacement=False))
    assert sorted(once) == [0, 1, 2]
    for args, message in [(([1, 2], 0), "num_samples should be a positive integer"),
                          (([1, -1], 2), "non-negative"), (([0, 0], 1), "positive sum"),
                          (([[1, 2]], 1), "1d sequence"),
                          (([1, 0], 2, False), "without replacement from 1"),
                          (([1, 2], 2, 1), "replacement should be a boolean")]:
        with pytest.raises(ValueError, match=message):
            WeightedRandomSampler(*args)
    loader = DataLoader(ranged(3), sampler=WeightedRandomSampler([0, 0, 1], 5), batch_size=5)
    assert indices_of(loader) == [[2, 2, 2, 2, 2]]


def test_new_samplers_match_torch_where_deterministic():
    torch = pytest.importorskip("torch")
    ours = WeightedRandomSampler([0.0, 2.0, 0.0], 6)
    theirs = torch.utils.data.WeightedRandomSampler([0.0, 2.0, 0.0], 6)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    assert sorted(SubsetRandomSampler([4, 8, 9])) == sorted(
        torch.utils.data.SubsetRandomSampler([4, 8, 9]))
