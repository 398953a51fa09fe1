"""Models: ViViT or I3D backbone, hallucination streams, fusion, PredNet, CENet (docs/method.md §2.1-2.5).

Entry points: `hallucinator.build_model(config.model, stream_dims, num_classes)` and
`hallucinator.param_labels(params)`.

Logical axis names (for `nn.logical_to_mesh_sharding` / flax partitioning rules):

Parameters (kernels, biases, norm scales; None = never sharded):
  embed         backbone width D (token channels, LayerNorm scales, head inputs)
  mlp           hidden size of the transformer MLP
  heads, kv     attention heads and per-head size (q/k/v kernels: embed, heads, kv;
                output kernel: heads, kv, embed)
  length        token positions of a learned position embedding
  conv_t, conv_h, conv_w, conv_in, conv_out   I3D conv kernels [t, h, w, in, out] (conv_out also
                names the BatchNorm scales/biases)
  stream        output of a hallucination / HAF head (K*d)
  stream_hidden filters of an I3D head's temporal conv (X [B, T'', C] -> [B, C'])
  fused         psi'_tot, the fused vector PredNet reads
  classes       PredNet output
  cenet_in, cenet_hidden, cenet_out   CENet input (d'), hidden and output widths
Activations (`nn.with_logical_constraint`):
  batch, length, embed   tokens inside the backbone ([B, N, D]; the factorised encoder folds
                         time into batch for its spatial stage)
  batch                  I3D feature maps [B, T, H, W, C] (other dims unconstrained)

`model.init` returns parameters boxed in `nn.LogicallyPartitioned`; `flax.linen.meta.unbox`
gives plain arrays and `nn.get_partition_spec` the logical specs.
"""
