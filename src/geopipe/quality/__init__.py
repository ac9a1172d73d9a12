"""geopipe.quality: data-quality checks returning results, quarantine, reports, and privacy.

Public names (module): ``CheckResult`` (checks), ``check_admin`` (boundaries), ``check_points``,
``flag_points`` (points), ``check_raster`` (rasters), ``check_indicators`` (indicators),
``quarantine``, ``rejected_to_quarantine``, ``write_quarantine`` (quarantine), ``quality_report``,
``results_to_json``, ``raise_on_fail`` (report), ``suppress_small_counts``, ``suppress_cells``, ``pseudonymise``,
``drop_personal`` (privacy). Import them from their modules; this package imports nothing heavy.
"""
