import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: augmentation")


@app.cell
def _():
    import marimo as mo
    import polars as pl
    import torch

    from avexlab.augment import preview
    from avexlab.config import AugmentConfig, MixupConfig, NoiseConfig
    from avexlab.data.dataset import ManifestDataset, collate
    from avexlab.experiments import world_noise_bank
    from avexlab.synth import render_world
    from avexlab.viz import SpectrogramPlayer
    from avexlab.viz.notebook import SCALES, default_scale, world_preset
    from avexlab.viz.tables import augmentation_summary

    return (
        AugmentConfig,
        ManifestDataset,
        MixupConfig,
        NoiseConfig,
        SCALES,
        SpectrogramPlayer,
        augmentation_summary,
        collate,
        default_scale,
        mo,
        pl,
        preview,
        render_world,
        torch,
        world_noise_bank,
        world_preset,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Augmentation: noise injection and mixup

    The AVEX recipes train with two waveform augmentations, applied on the device to each batch:

    - **noise injection**: with probability *p* per clip, background noise (wind, rain, stream, insect
      chorus from the synthetic world) is added at an SNR drawn uniformly from a range (the paper: -10 to
      20 dB);
    - **mixup**: with probability *p* per batch, pairs of clips are mixed, `x_i <- lam x_i + (1 - lam) x_j`
      with `lam ~ Beta(alpha, alpha)`, and their labels are **OR-ed** (multi-label targets).

    Change the controls; the batch below is re-augmented with the same seed, so what you see is exactly
    what the trainer would do with these settings.
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    mo.hstack([scale, seed], justify="start")
    return scale, seed


@app.cell
def _(ManifestDataset, collate, mo, pl, render_world, scale, seed, world_noise_bank, world_preset):
    with mo.status.spinner(title="Rendering a batch of focal clips and the noise bank ..."):
        world = render_world(world_preset(scale.value), seed.value)
        # One test clip of each of four taxon groups: a small, varied batch.
        clips = (
            world.suites["syn-beans-clf"]
            .split("test")
            .unique("taxon_group", keep="first", maintain_order=True)
            .head(4)
            .sort("clip_id")
        )
        dataset = ManifestDataset(clips, sample_rate=world.config.sample_rate, clip_s=world.config.clip_s)
        batch = collate([dataset[i] for i in range(len(dataset))])
        bank = world_noise_bank(world, world.config.sample_rate, world.config.clip_s)
    targets = dataset.label_space.multi_hot(batch["label_idx"])
    mo.md(
        f"Batch: {batch['wave'].shape[0]} clips of {world.config.clip_s:g} s; noise bank: "
        f"{bank.shape[0]} background types; {len(dataset.label_space)} labels. Clips: "
        + ", ".join(f"`{c}`" for c in batch["clip_id"])
    )
    return batch, bank, dataset, targets, world


@app.cell
def _(mo):
    noise_on = mo.ui.switch(value=True, label="noise injection")
    noise_p = mo.ui.slider(0.0, 1.0, step=0.05, value=1.0, label="p (per clip)", show_value=True)
    snr = mo.ui.range_slider(-20, 30, step=1, value=[-10, 20], label="SNR range (dB)", show_value=True)
    mix_on = mo.ui.switch(value=True, label="mixup")
    mix_p = mo.ui.slider(0.0, 1.0, step=0.05, value=1.0, label="p (per batch)", show_value=True)
    alpha = mo.ui.slider(0.1, 2.0, step=0.1, value=0.4, label="alpha", show_value=True)
    pairs = mo.ui.slider(1, 2, step=1, value=1, label="pairs", show_value=True)
    aug_seed = mo.ui.number(start=0, stop=10_000, value=0, label="augmentation seed")
    mo.vstack(
        [
            mo.hstack([noise_on, noise_p, snr], justify="start"),
            mo.hstack([mix_on, mix_p, alpha, pairs], justify="start"),
            aug_seed,
        ]
    )
    return aug_seed, alpha, mix_on, mix_p, noise_on, noise_p, pairs, snr


@app.cell
def _(
    AugmentConfig,
    MixupConfig,
    NoiseConfig,
    alpha,
    aug_seed,
    bank,
    batch,
    mix_on,
    mix_p,
    noise_on,
    noise_p,
    pairs,
    preview,
    snr,
    targets,
):
    config = AugmentConfig(
        noise=NoiseConfig(enabled=noise_on.value, p=noise_p.value, snr_db=tuple(snr.value)),
        mixup=MixupConfig(enabled=mix_on.value, p=mix_p.value, alpha=alpha.value, n_pairs=pairs.value),
    )
    result = preview(
        batch["wave"],
        bank=bank,
        targets=targets,
        padding_mask=batch["padding_mask"],
        cfg=config,
        seed=aug_seed.value,
    )
    return (result,)


@app.cell
def _(mo):
    mo.md(r"""
    ## What happened to each clip

    `noise` and `SNR` are the per-clip draws; `mixed with` names the clip mixed in (with weight
    `1 - lam`). The labels after mixup are the union of both clips' labels.
    """)
    return


@app.cell
def _(augmentation_summary, batch, dataset, result):
    augmentation_summary(result, batch["clip_id"], dataset.label_space.labels)
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Listen and look: before and after
    """)
    return


@app.cell
def _(SpectrogramPlayer, batch, mo, result, world):
    _sr = world.config.sample_rate
    mo.vstack(
        [
            mo.vstack(
                [
                    mo.md(f"**{batch['clip_id'][_i]}**"),
                    mo.hstack(
                        [
                            mo.vstack(
                                [
                                    mo.md("before"),
                                    mo.ui.anywidget(
                                        SpectrogramPlayer.from_waveform(
                                            result["before"][_i], _sr, height_px=120
                                        )
                                    ),
                                ]
                            ),
                            mo.vstack(
                                [
                                    mo.md("after"),
                                    mo.ui.anywidget(
                                        SpectrogramPlayer.from_waveform(
                                            result["after"][_i], _sr, height_px=120
                                        )
                                    ),
                                ]
                            ),
                        ],
                        widths="equal",
                    ),
                ]
            )
            for _i in range(len(batch["clip_id"]))
        ]
    )
    return


if __name__ == "__main__":
    app.run()
