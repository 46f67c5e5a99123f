# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Probing, retrieval, clustering (25 min), the JupyterLab twin of `../s2_probe_retrieval_clustering.py`
#
# **Goals.** After this section you can say what each of the paper's three ways of judging a frozen
# encoder measures, what it needs (labels? training?), compute one of them by hand, and explain why two
# methods can rank the same encoders differently.
#
# Exercises: replace `...` with your answer and run the cell; the check below it says whether it is
# right (a hint appears from your second wrong try). `COURSE` is the prepared course folder
# (`avexlab workshop prepare`); leave it empty for the default.

# %%
import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from avexlab.evaluate.retrieval import retrieval_scores
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.suites import evaluate_embeddings
from avexlab.viz.notebook import default_scale
from avexlab.workshop.course import Course, locate_course
from avexlab.workshop.exercises import Tracker
from avexlab.workshop.exercises.s2_methods import DATASET

COURSE = ""  # empty: ~/avexlab-workshop/<scale> (or $AVEXLAB_WORKSHOP_DIR/<scale>)
ENCODER = "sl"  # one of baseline, sl, ssl, sl-ssl

course = Course.open(COURSE or locate_course(default_scale()))
tracker = Tracker(course)
print(course, "(instructor mode)" if tracker.instructor else "")

# %% [markdown]
# ## The three methods
#
# | method | what it asks | needs | the paper's metric |
# |---|---|---|---|
# | **linear probe** | can a *linear* classifier trained on the embeddings tell the classes apart? | labelled training and validation clips | accuracy |
# | **retrieval** | are a clip's nearest neighbours (cosine) of its own class? | labels only to score | ROC AUC, precision@1 |
# | **clustering** | does k-means, told only K, find the classes? | labels only to score | NMI |

# %%
emb = course.embeddings(ENCODER, "clf", DATASET)
is_test = (emb.manifest["split"] == "test").to_numpy()
x_test = emb.array()[is_test]
labels_test = emb.manifest.filter(pl.Series(is_test))["labels"].list.first().to_list()
spec = EvalSpec(probe_recipe=course.meta["plan"]["probe_recipe"])
table = evaluate_embeddings(
    emb,
    benchmark="syn-beans-clf",
    dataset=DATASET,
    task_family="classification",
    multi_label=False,
    spec=spec,
)
table.filter(pl.col("metric").is_in(["accuracy", "roc_auc", "precision_at_1", "nmi"])).select(
    "method", "metric", pl.col("value").round(3), "n"
)

# %% [markdown]
# ## Clustering: what K does
#
# Change `K` and run the cell: NMI says how well k-means' clusters match the species.

# %%
K = 3
clusters = KMeans(n_clusters=K, n_init=10, random_state=42).fit_predict(x_test)
print(f"K = {K}: NMI = {normalized_mutual_info_score(labels_test, clusters):.3f}")

# %%
print(tracker.prompt("s2-kmeans-k"))
k_answer = ...  # the protocol's K, a number

# %%
tracker.check("s2-kmeans-k", k_answer)

# %% [markdown]
# ## Retrieval by hand

# %%
print(tracker.prompt("s2-precision-at-1"))


def precision_at_1(embeddings, labels):
    """Fraction of clips whose most cosine-similar other clip has the same label."""
    ...


# %%
feedback_p1 = tracker.check("s2-precision-at-1", precision_at_1)
feedback_p1

# %%
lib = retrieval_scores(x_test, labels_test)
print(f"library precision@1 = {lib['precision_at_1']:.3f}")
if feedback_p1.ok:
    print(f"yours = {feedback_p1.answer(x_test, labels_test):.3f}")
_ = np  # numpy is there for your function

# %% [markdown]
# ## Recap
#
# - The **probe** measures what a linear read-out can extract with labels; **retrieval** and
#   **clustering** measure the geometry the encoder gives for free.
# - Clustering's K comes from the data (the number of classes being clustered), never tuned on the test set.
# - precision@1 is a few lines of numpy: normalise, take similarities, exclude the query itself.

# %%
tracker.summary()
