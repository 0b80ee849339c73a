"""The `folder` dataset on messy folders: mixed sizes and modes, 16-bit PNGs, EXIF orientation, corrupt files, empty folders."""
import numpy as np, pytest, torch
from PIL import Image
from simclr_nb.data import load_dataset, _read_images

def _png(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path

@pytest.fixture
def folder(tmp_path):
    "2 classes x 3 train + 1 valid images of 12 px RGB, 4 unlabeled of 20 px"
    rng = np.random.default_rng(0)
    for split, n in (('train', 3), ('valid', 1)):
        for c in ('cat', 'dog'):
            for i in range(n): _png(tmp_path/split/c/f'{i}.png', rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    for i in range(4): _png(tmp_path/'unlabeled'/'b'/f'u{i}.png', rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    return tmp_path

def test_mixed_sizes_are_resized(folder, capsys):
    d = load_dataset('folder', folder)
    assert 'resized to 12x12' in capsys.readouterr().out
    assert d.train_x.shape == (6, 3, 12, 12) and d.unlabeled_x.shape == (4, 3, 12, 12) and d.test_x.shape == (2, 3, 12, 12)
    assert load_dataset('folder', folder, size=16).unlabeled_x.shape == (4, 3, 16, 16)

def test_non_square_resize_keeps_aspect(tmp_path):
    a = np.zeros((10, 30), np.uint8); a[:, 10:20] = 255             # a bright middle third
    _png(tmp_path/'train'/'x'/'wide.png', a)
    d = load_dataset('folder', tmp_path, size=10)
    assert d.train_x.shape == (1, 1, 10, 10) and d.train_x.float().mean() > 250   # centre crop, not a squash

def test_corrupt_and_truncated_files_are_listed_and_skipped(folder, capsys):
    (folder/'train'/'dog'/'broken.png').write_bytes(b'not a png at all')
    good = (folder/'train'/'dog'/'0.png').read_bytes()
    (folder/'unlabeled'/'cut.png').write_bytes(good[:len(good) // 2])
    (folder/'valid'/'cat'/'empty.jpg').write_bytes(b'')
    d = load_dataset('folder', folder, size=12)
    out = capsys.readouterr().out
    assert 'Skipped 3 of 15 image files' in out
    for name in ('train/dog/broken.png', 'unlabeled/cut.png', 'valid/cat/empty.jpg'): assert name in out
    assert str(folder) not in out                                       # paths relative to the folder
    assert sorted(p.name for p, _ in d.skipped) == ['broken.png', 'cut.png', 'empty.jpg']
    assert (len(d.train_x), len(d.test_x), len(d.unlabeled_x)) == (6, 2, 4)
    assert d.train_y.tolist() == [0, 0, 0, 1, 1, 1] and d.test_y.tolist() == [0, 1]

def test_class_with_only_unreadable_files(folder, capsys):
    (folder/'train'/'bird').mkdir(); (folder/'train'/'bird'/'x.png').write_bytes(b'junk')
    with pytest.raises(ValueError, match='No readable training images left.*bird'): load_dataset('folder', folder, size=12)

def test_empty_folders_name_the_path(folder, tmp_path_factory):
    empty = tmp_path_factory.mktemp('empty')
    with pytest.raises(FileNotFoundError, match=f"No {empty/'train'}.*holds no image files"): load_dataset('folder', empty)
    with pytest.raises(FileNotFoundError, match='No folder'): load_dataset('folder', empty/'missing')
    (empty/'train').mkdir()
    with pytest.raises(FileNotFoundError, match='has no class sub-folders'): load_dataset('folder', empty)
    (folder/'train'/'bird').mkdir()
    with pytest.raises(FileNotFoundError, match=f"class folder {folder/'train'/'bird'} has no image files"): load_dataset('folder', folder)
    (folder/'train'/'bird').rmdir(); (folder/'valid'/'dog'/'0.png').unlink()
    with pytest.raises(FileNotFoundError, match=f"class folder {folder/'valid'/'dog'} has no image files"): load_dataset('folder', folder)

def test_modes_16bit_exif(tmp_path):
    a = np.zeros((4, 8), np.uint8); a[0, 0] = 255
    paths = [_png(tmp_path/'grey.png', np.full((8, 4), 7, np.uint8)),
             _png(tmp_path/'sixteen.png', np.full((8, 4), 65535 // 4, np.uint16)),
             _png(tmp_path/'palette.png', np.full((8, 4), 9, np.uint8)),
             _png(tmp_path/'rgba.png', np.dstack([np.full((8, 4, 3), 200, np.uint8), np.zeros((8, 4), np.uint8)]))]
    Image.open(paths[2]).convert('P').save(paths[2])
    exif = Image.Exif(); exif[0x0112] = 6
    paths.append(_png(tmp_path/'rotated.png', a, exif=exif))
    assert Image.open(paths[1]).mode == 'I;16'
    arrs, grey, skipped = _read_images(paths)
    assert not grey and not skipped and all(x.shape == (8, 4, 3) for x in arrs)
    assert (arrs[1] == 64).all()                                        # 16383/65535*255 = 63.75, not clipped to 255
    assert (arrs[2] == 9).all() and (arrs[3] == 200).all()
    assert (arrs[4][..., 0] == np.rot90(a, -1)).all()                   # turned upright by the EXIF tag
    arrs, grey, _ = _read_images(paths[:2])
    assert grey and arrs[0].shape == (8, 4)
