"""EPIC-Kitchens-55 action segments (halluc_jax/data/datasets/epic_kitchens55.py; README 'The
paper's datasets'). Verb classification by default (125 classes; data.label_field 'noun': 352,
'action': the verb-noun pairs of the CSV), top-1 on segments held out of the train CSV.

Files (https://epic-kitchens.github.io/2018; annotations:
https://github.com/epic-kitchens/epic-kitchens-55-annotations):
  videos/train/PXX/PXX_YY.MP4 -> data/epic_kitchens55/videos/train/PXX/PXX_YY.MP4
  EPIC_train_action_labels.csv, EPIC_verb_classes.csv, EPIC_noun_classes.csv ->
      data/epic_kitchens55/annotations/

The public test sets (S1 seen, S2 unseen kitchens) have no labels, so 'val' is the segments of
data.val_participants. The paper uses the split of Baradel et al. (ECCV 2018), whose list we do
not have: P26-P31 below is OUR choice, not that split; results are not comparable to it.

Run (noun classes: add --config.data.label_field=noun --config.data.num_classes=352):
  python -m halluc_jax.main --config configs/epic_kitchens55.py --workdir workdirs/epic_verb
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'epic_kitchens55'
  d.annotations = 'data/epic_kitchens55/annotations'
  d.root = 'data/epic_kitchens55/videos/train'
  d.label_field = 'verb'
  d.num_classes = 125
  d.val_participants = ('P26', 'P27', 'P28', 'P29', 'P30', 'P31')  # our choice (docstring)
  d.train_split, d.eval_split, d.test_split = 'train', 'val', ''
  # Segments are a few seconds of 60 fps video: 16 frames 4 apart span about a second.
  d.sampling, d.frame_stride, d.flip = 'dense', 4, True
  d.aux_dir = 'data/epic_kitchens55/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
