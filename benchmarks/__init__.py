"""jaxvision's benchmarks, run from the repository root as modules (`python -m benchmarks.NAME`).

The benchmark proper, `./launch.sh bench` = `python -m benchmarks.run` (results: RESULTS.md):
  run               the sections and their tables: jaxvision against Keras 3 (JAX) and PyTorch
  throughput        interleaved timing of cases, each in its own process (worker); the tables and child runs
  specs             the benchmarked models as plain data, shared by every framework's side
  jaxvision_side, peers_keras, peers_torch   each framework's build of those models
  flops, machine    the matmul peak and what the report says about the machine
  compile_time, pmap_overhead, pipeline_rate, flags_section, ablation_section   sections of run
  ablations, alternatives, layers   the variants the ablations time, and the op-by-op section

Investigations with their own command (each writes a section of RESULTS.md or RESULTS_data.md):
  data_pipeline, readers   input pipelines alone; tf.data against grain
  host_loop, profile_step, end_to_end   the host around the step, one step op by op, a whole run
  spread            each step's wall time beside steal, sys time and faults, one process at a time
  dispatch          steps dispatched one by one against several in one scan (config.steps_per_dispatch)
  conv_shapes       every convolution shape of a model timed alone: Eigen, YNNPACK, cpu_conv's rewrite
  device_prepare, device_check, device_runs, device_check.sh   the prepared check on a lent GPU
"""
