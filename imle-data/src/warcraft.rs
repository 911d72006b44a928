//! [`ShortestPathData`] (vertex costs on a grid) and the Warcraft shortest-path layout.

use super::npy::read_npy_native;
use super::{data_error, read_table};
use candle_core::{DType, Error, Result, Tensor};
use std::path::{Path, PathBuf};

/// Reads one array of a Warcraft split: `{dir}/{split}_{name}.npy`, or, when that file is
/// absent, `{split}_{name}_part0.npy`, `_part1.npy`, … (at least two, as the 18×18 and larger
/// training splits ship) stacked along axis 0. `Ok(None)` when neither form exists.
fn read_npy_parts(dir: &Path, split: &str, name: &str) -> Result<Option<(Tensor, PathBuf)>> {
    let single = dir.join(format!("{split}_{name}.npy"));
    if single.is_file() {
        return Ok(Some((read_npy_native(&single)?, single)));
    }
    let part = |i: usize| dir.join(format!("{split}_{name}_part{i}.npy"));
    let parts: Vec<PathBuf> = (0..).map(part).take_while(|p| p.is_file()).collect();
    match parts.len() {
        0 => return Ok(None),
        1 => {
            return Err(data_error(
                &part(1),
                format!(
                    "no such file, but {} exists: a split stored in parts needs all of them",
                    parts[0].display()
                ),
            ));
        }
        _ => {}
    }
    let tensors = parts
        .iter()
        .map(|p| read_npy_native(p))
        .collect::<Result<Vec<_>>>()?;
    for (p, t) in parts.iter().zip(&tensors).skip(1) {
        let (d0, t0) = (tensors[0].dims(), t.dims());
        if t.dtype() != tensors[0].dtype() || d0.len() != t0.len() || d0.get(1..) != t0.get(1..) {
            return Err(data_error(
                p,
                format!(
                    "{:?} {:?} does not stack on {} ({:?} {:?}) along axis 0",
                    t.dtype(),
                    t0,
                    parts[0].display(),
                    tensors[0].dtype(),
                    d0
                ),
            ));
        }
    }
    let joined = Tensor::cat(&tensors, 0).map_err(|e| data_error(&parts[0], e))?;
    Ok(Some((joined, parts[0].clone())))
}

/// A shortest-path data set: inputs, the true vertex costs of an `H × W` grid, and optionally
/// the true shortest paths (0/1 masks), all with the same number `N` of instances.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle_data::ShortestPathData;
/// let data = ShortestPathData::new(
///     Tensor::zeros((4, 5), candle_core::DType::F32, &Device::Cpu)?,
///     Tensor::ones((4, 9), candle_core::DType::F32, &Device::Cpu)?,
///     None,
///     Some((3, 3)),
/// )?;
/// assert_eq!(data.costs.dims(), &[4, 3, 3]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShortestPathData {
    /// The network's inputs, `[N, …]` (f32). For Warcraft maps, images `[N, 3, H·P, W·P]` in
    /// `[0, 1]`.
    pub features: Tensor,
    /// The true vertex costs, `[N, H, W]` (f32, finite).
    pub costs: Tensor,
    /// The true shortest paths as 0/1 masks `[N, H, W]`, when the data set has them.
    pub paths: Option<Tensor>,
}

impl ShortestPathData {
    /// Checks and assembles a data set. `costs` may be `[N, H, W]`, or `[N, H·W]` with `grid`
    /// given; `paths`, when given, must have the costs' shape (or be flat like them).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_data::ShortestPathData;
    /// // PyEPO's genData writes edge costs (40 edges of a 5×5 grid graph): not vertex costs.
    /// let x = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu)?;
    /// let c = Tensor::ones((2, 40), candle_core::DType::F32, &Device::Cpu)?;
    /// let err = ShortestPathData::new(x, c, None, Some((5, 5))).unwrap_err();
    /// assert!(err.to_string().contains("40 costs per instance"));
    /// assert!(err.to_string().contains("DigraphShortestPath::grid(5, 5)"));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(
        features: Tensor,
        costs: Tensor,
        paths: Option<Tensor>,
        grid: Option<(usize, usize)>,
    ) -> Result<Self> {
        let n = features
            .dims()
            .first()
            .copied()
            .ok_or_else(|| Error::Msg("the features must have rank >= 1 (N, ...)".into()))?;
        let costs = grid_shaped("costs", costs.to_dtype(DType::F32)?, grid)?;
        let (cn, h, w) = costs.dims3()?;
        if cn != n {
            return Err(Error::Msg(format!(
                "{n} feature rows but {cn} cost instances: they must match"
            )));
        }
        if n == 0 {
            return Err(Error::Msg("the data set is empty (N = 0)".into()));
        }
        let flat = costs.flatten_all()?.to_vec1::<f32>()?;
        if let Some(bad) = flat.iter().position(|c| !c.is_finite()) {
            return Err(Error::Msg(format!(
                "cost {} of instance {} is not finite",
                flat[bad],
                bad / (h * w)
            )));
        }
        let paths = match paths {
            None => None,
            Some(p) => {
                let p = grid_shaped("paths", p.to_dtype(DType::F32)?, Some((h, w)))?;
                if p.dims() != costs.dims() {
                    return Err(Error::Msg(format!(
                        "paths have shape {:?}, costs {:?}: they must match",
                        p.dims(),
                        costs.dims()
                    )));
                }
                Some(p)
            }
        };
        Ok(ShortestPathData {
            features: features.to_dtype(DType::F32)?,
            costs,
            paths,
        })
    }

    /// Reads features and costs from `.npy` or CSV files (see [`read_table`]) and checks them
    /// with [`ShortestPathData::new`]. Give `grid` when the costs are stored flat
    /// (`[N, H·W]`, as in a CSV table). CSV files are read with every
    /// [`CsvOptions`](super::CsvOptions) option `Auto`; to choose them, or to see what was
    /// detected, read the tables with [`CsvOptions::read`](super::CsvOptions::read) and pass
    /// them to [`ShortestPathData::new`].
    ///
    /// ```no_run
    /// use imle_data::ShortestPathData;
    /// let data = ShortestPathData::load("x_train.csv", "c_train.csv", Some((12, 12)))?;
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn load(
        features: impl AsRef<Path>,
        costs: impl AsRef<Path>,
        grid: Option<(usize, usize)>,
    ) -> Result<Self> {
        let costs_path = costs.as_ref();
        let features = read_table(features)?;
        let costs = read_table(costs_path)?;
        Self::new(features, costs, None, grid).map_err(|e| data_error(costs_path, e))
    }

    /// Reads the Warcraft shortest-path layout used by PyEPO and the blackbox-backprop data:
    /// `{dir}/{split}_maps.npy` (`[N, H·P, W·P, 3]` RGB images, `u8` or float),
    /// `{dir}/{split}_vertex_weights.npy` (`[N, H, W]`) and, if present,
    /// `{dir}/{split}_shortest_paths.npy` (`[N, H, W]`). The maps become `[N, 3, H·P, W·P]`
    /// f32 in `[0, 1]` (divided by 255 when stored as integers or when any value exceeds 1).
    ///
    /// The data for 18×18 and larger grids ships the training split in pieces,
    /// `train_maps_part0.npy`, `train_maps_part1.npy` (and the same for the weights and
    /// paths): where `{split}_{name}.npy` is absent, its parts `_part0.npy`, `_part1.npy`, …
    /// are read and stacked along axis 0, in order. A lone `_part0.npy` is an error (a missing
    /// piece would silently halve the data), as is an array found in neither form; the error
    /// names the files looked for.
    ///
    /// ```no_run
    /// use imle_data::ShortestPathData;
    /// let train = ShortestPathData::warcraft("warcraft_shortest_path/12x12", "train")?;
    /// assert_eq!(train.grid(), (12, 12));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn warcraft(dir: impl AsRef<Path>, split: &str) -> Result<Self> {
        let dir = dir.as_ref();
        let missing = |name: &str| {
            data_error(
                dir,
                format!(
                    "no such file: {split}_{name}.npy (nor its parts {split}_{name}_part0.npy, \
                     {split}_{name}_part1.npy, …)"
                ),
            )
        };
        let (raw, maps_path) =
            read_npy_parts(dir, split, "maps")?.ok_or_else(|| missing("maps"))?;
        let integer = !matches!(
            raw.dtype(),
            DType::F16 | DType::BF16 | DType::F32 | DType::F64
        );
        let maps = raw.to_dtype(DType::F32)?;
        let maps = match maps.dims() {
            [_, _, _, 3] => maps.permute((0, 3, 1, 2))?.contiguous()?,
            dims => {
                return Err(data_error(
                    &maps_path,
                    format!("expected RGB maps [N, H, W, 3], got shape {dims:?}"),
                ));
            }
        };
        let max = maps.max_all()?.to_scalar::<f32>()?;
        let maps = if integer || max > 1.0 {
            (maps / 255.0)?
        } else {
            maps
        };
        let (costs, _) = read_npy_parts(dir, split, "vertex_weights")?
            .ok_or_else(|| missing("vertex_weights"))?;
        // The true paths are optional: without them, the caller computes them from the costs.
        let paths = read_npy_parts(dir, split, "shortest_paths")?.map(|(p, _)| p);
        let data = Self::new(maps, costs, paths, None).map_err(|e| data_error(dir, e))?;
        let (h, w) = data.grid();
        let (ih, iw) = (data.features.dim(2)?, data.features.dim(3)?);
        if ih % h != 0 || iw % w != 0 {
            return Err(data_error(
                dir,
                format!("maps of {ih}×{iw} pixels do not split into a {h}×{w} grid of cells"),
            ));
        }
        Ok(data)
    }

    /// The number of instances `N`.
    ///
    /// ```
    /// # use candle_core::{Device, Tensor};
    /// # use imle_data::ShortestPathData;
    /// let x = Tensor::zeros((3, 1), candle_core::DType::F32, &Device::Cpu)?;
    /// let c = Tensor::ones((3, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
    /// assert_eq!(ShortestPathData::new(x, c, None, None)?.len(), 3);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty: `new` rejects N = 0
    pub fn len(&self) -> usize {
        self.costs.dims()[0]
    }

    /// The grid `(H, W)`.
    ///
    /// ```
    /// # use candle_core::{Device, Tensor};
    /// # use imle_data::ShortestPathData;
    /// let x = Tensor::zeros((1, 1), candle_core::DType::F32, &Device::Cpu)?;
    /// let c = Tensor::ones((1, 2, 3), candle_core::DType::F32, &Device::Cpu)?;
    /// assert_eq!(ShortestPathData::new(x, c, None, None)?.grid(), (2, 3));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn grid(&self) -> (usize, usize) {
        let dims = self.costs.dims();
        (dims[1], dims[2])
    }
}

/// `[N, H, W]` as it is, or `[N, H·W]` reshaped with `grid`; anything else is an error.
fn grid_shaped(what: &str, t: Tensor, grid: Option<(usize, usize)>) -> Result<Tensor> {
    match (t.dims(), grid) {
        ([_, h, w], None) if *h > 0 && *w > 0 => Ok(t),
        ([_, h, w], Some((gh, gw))) if (*h, *w) == (gh, gw) => Ok(t),
        ([n, cells], Some((h, w))) if *cells == h * w => t.reshape((*n, h, w)),
        ([_, cells], Some((h, w))) if h > 0 && w > 0 && *cells == (h - 1) * w + (w - 1) * h => {
            Err(Error::Msg(format!(
                "{what}: {cells} costs per instance, but a {h}×{w} grid has {} vertices: these \
                 look like PyEPO's arc costs of the {h}×{w} grid network (its genData): read \
                 them with PyEpoData and solve with DigraphShortestPath::grid({h}, {w})",
                h * w
            )))
        }
        ([_, cells], Some((h, w))) => Err(Error::Msg(format!(
            "{what}: {cells} costs per instance, but a {h}×{w} grid has {} vertices (edge costs, \
             as PyEPO's genData writes for its grid graph, need an edge-cost solver)",
            h * w
        ))),
        ([_, _], None) => Err(Error::Msg(format!(
            "{what} are flat ({:?}): give the grid (H, W)",
            t.dims()
        ))),
        (dims, grid) => Err(Error::Msg(format!(
            "{what} must be [N, H, W] or [N, H·W]; got shape {dims:?} (grid {grid:?})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TempDir, write_raw_npy};
    use candle_core::Device;

    /// Writes one Warcraft array, whole or in `parts` pieces along axis 0.
    fn write_warcraft(dir: &TempDir, name: &str, t: &Tensor, parts: usize) -> Result<()> {
        if parts == 1 {
            return t.write_npy(dir.file(&format!("{name}.npy")));
        }
        let n = t.dim(0)?;
        let step = n.div_ceil(parts);
        for i in 0..parts {
            let start = (i * step).min(n);
            let len = step.min(n - start);
            t.narrow(0, start, len)?
                .write_npy(dir.file(&format!("{name}_part{i}.npy")))?;
        }
        Ok(())
    }

    #[test]
    fn warcraft_split_in_parts_is_stacked() -> Result<()> {
        let dir = TempDir::new();
        let n = 5;
        let bytes: Vec<u8> = (0..n * 4 * 4 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let maps = Tensor::from_vec(bytes, (n, 4, 4, 3), &Device::Cpu)?;
        let costs =
            (Tensor::arange(0f32, (n * 4) as f32, &Device::Cpu)? + 1.0)?.reshape((n, 2, 2))?;
        let paths = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &Device::Cpu)?
            .unsqueeze(0)?
            .repeat((n, 1, 1))?;
        write_warcraft(&dir, "train_maps", &maps, 2)?;
        write_warcraft(&dir, "train_vertex_weights", &costs, 2)?;
        write_warcraft(&dir, "train_shortest_paths", &paths, 3)?;
        let data = ShortestPathData::warcraft(&dir.0, "train")?;
        assert_eq!(data.len(), n);
        assert_eq!(data.costs.to_vec3::<f32>()?, costs.to_vec3::<f32>()?);
        assert_eq!(
            data.paths.unwrap().to_vec3::<f32>()?,
            paths.to_vec3::<f32>()?
        );
        let expected = (maps.to_dtype(DType::F32)?.permute((0, 3, 1, 2))? / 255.0)?;
        let diff = data
            .features
            .broadcast_sub(&expected)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        // A single file is preferred over parts; parts of other names are left alone.
        costs.write_npy(dir.file("train_vertex_weights.npy"))?;
        assert_eq!(ShortestPathData::warcraft(&dir.0, "train")?.len(), n);
        // A lone part0 names the missing part1.
        std::fs::remove_file(dir.file("train_maps_part1.npy")).unwrap();
        let lone = ShortestPathData::warcraft(&dir.0, "train")
            .unwrap_err()
            .to_string();
        assert!(
            lone.contains("train_maps_part1.npy: no such file")
                && lone.contains("train_maps_part0.npy exists"),
            "{lone}"
        );
        // Neither form: both names in the error.
        std::fs::remove_file(dir.file("train_maps_part0.npy")).unwrap();
        let neither = ShortestPathData::warcraft(&dir.0, "train")
            .unwrap_err()
            .to_string();
        assert!(
            neither.contains("train_maps.npy") && neither.contains("train_maps_part0.npy"),
            "{neither}"
        );
        // Parts that do not stack (another image size) are named.
        write_warcraft(&dir, "train_maps", &maps, 2)?;
        maps.narrow(1, 0, 2)?
            .write_npy(dir.file("train_maps_part1.npy"))?;
        let bad = ShortestPathData::warcraft(&dir.0, "train")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("train_maps_part1.npy") && bad.contains("does not stack"),
            "{bad}"
        );
        Ok(())
    }

    #[test]
    fn load_features_and_costs_from_npy_and_csv() -> Result<()> {
        let dir = TempDir::new();
        let x = Tensor::arange(0f32, 6.0, &Device::Cpu)?.reshape((2, 3))?;
        x.write_npy(dir.file("x.npy"))?;
        std::fs::write(
            dir.file("c.csv"),
            "c0,c1,c2,c3,c4,c5\n1,2,3,4,5,6\n6,5,4,3,2,1\n",
        )
        .unwrap();
        let data = ShortestPathData::load(dir.file("x.npy"), dir.file("c.csv"), Some((2, 3)))?;
        assert_eq!(data.len(), 2);
        assert_eq!(data.grid(), (2, 3));
        assert_eq!(
            data.costs.to_vec3::<f32>()?[1],
            [[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]
        );
        assert_eq!(data.features.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        // Flat costs without a grid, a wrong grid, and mismatched N are errors.
        let flat = ShortestPathData::load(dir.file("x.npy"), dir.file("c.csv"), None);
        assert!(flat.unwrap_err().to_string().contains("give the grid"));
        let wrong = ShortestPathData::load(dir.file("x.npy"), dir.file("c.csv"), Some((2, 2)));
        assert!(
            wrong
                .unwrap_err()
                .to_string()
                .contains("6 costs per instance")
        );
        Tensor::zeros((3, 3), DType::F32, &Device::Cpu)?.write_npy(dir.file("x3.npy"))?;
        let n = ShortestPathData::load(dir.file("x3.npy"), dir.file("c.csv"), Some((2, 3)));
        assert!(n.unwrap_err().to_string().contains("must match"));
        let ext = ShortestPathData::load(dir.file("x.json"), dir.file("c.csv"), Some((2, 3)));
        assert!(ext.unwrap_err().to_string().contains("unknown extension"));
        Ok(())
    }

    #[test]
    fn non_finite_costs_are_rejected() -> Result<()> {
        let x = Tensor::zeros((1, 1), DType::F32, &Device::Cpu)?;
        let c = Tensor::new(&[[[1f32, f32::NAN], [1.0, 1.0]]], &Device::Cpu)?;
        let err = ShortestPathData::new(x, c, None, None).unwrap_err();
        assert!(err.to_string().contains("not finite"));
        Ok(())
    }

    #[test]
    fn warcraft_layout() -> Result<()> {
        let dir = TempDir::new();
        // Two 2×2 maps of 2×2 pixels per cell, as u8 NHWC.
        let maps: Vec<u8> = (0..2 * 4 * 4 * 3).map(|i| (i * 5 % 256) as u8).collect();
        write_raw_npy(
            &dir.file("train_maps.npy"),
            "|u1",
            false,
            "(2, 4, 4, 3)",
            &maps,
        );
        let costs = Tensor::new(
            &[[[1f32, 2.0], [3.0, 4.0]], [[0.5, 9.0], [9.0, 0.5]]],
            &Device::Cpu,
        )?;
        costs.write_npy(dir.file("train_vertex_weights.npy"))?;
        let paths = Tensor::new(
            &[[[1f32, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]],
            &Device::Cpu,
        )?;
        paths.write_npy(dir.file("train_shortest_paths.npy"))?;
        let data = ShortestPathData::warcraft(&dir.0, "train")?;
        assert_eq!(data.features.dims(), &[2, 3, 4, 4]);
        assert_eq!(data.grid(), (2, 2));
        // Channel 1 of pixel (0, 1) of map 0 is byte 1·3 + 1 = 4 → 20 / 255.
        let v = data
            .features
            .get(0)?
            .get(1)?
            .get(0)?
            .get(1)?
            .to_scalar::<f32>()?;
        assert!((v - 20.0 / 255.0).abs() < 1e-6);
        assert_eq!(
            data.paths.unwrap().to_vec3::<f32>()?,
            paths.to_vec3::<f32>()?
        );
        // Without the paths file the paths are None; without the maps, a clear error.
        std::fs::remove_file(dir.file("train_shortest_paths.npy")).unwrap();
        assert!(ShortestPathData::warcraft(&dir.0, "train")?.paths.is_none());
        let missing = ShortestPathData::warcraft(&dir.0, "test")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("test_maps.npy") && missing.contains("no such file"));
        Ok(())
    }
}
