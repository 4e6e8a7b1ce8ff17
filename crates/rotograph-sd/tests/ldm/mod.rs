//! Test-side writers of the original (LDM/SGM) single-file layout: the naming and safetensors
//! writers of `rotograph_sd::testing::ldm`, and a PyTorch zip-pickle writer for `.ckpt`.

#![allow(dead_code)]

use candle_core::Tensor;
use std::io::Write;
use std::path::Path;

pub use rotograph_sd::testing::ldm::*;

// --- a PyTorch zip pickle (protocol 2), f32 tensors only ---

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn int(out: &mut Vec<u8>, v: usize) {
    out.push(b'J');
    out.extend_from_slice(&(v as i32).to_le_bytes());
}

fn int_tuple(out: &mut Vec<u8>, vs: &[usize]) {
    out.push(b'(');
    for &v in vs {
        int(out, v);
    }
    out.push(b't');
}

/// Writes `tensors` as a `torch.save`-style zip: `{name: tensor}`, or
/// `{"state_dict": {...}, "global_step": 1}` when `nested`.
pub fn save_ckpt(tensors: &[(String, Tensor)], nested: bool, path: &Path) {
    let mut pkl = vec![0x80, 2];
    if nested {
        pkl.push(b'}');
        pkl.push(b'(');
        unicode(&mut pkl, "global_step");
        int(&mut pkl, 1);
        unicode(&mut pkl, "state_dict");
    }
    pkl.push(b'}');
    pkl.push(b'(');
    let mut storages = Vec::new();
    for (i, (name, t)) in tensors.iter().enumerate() {
        let dims = t.dims().to_vec();
        let mut stride = vec![1usize; dims.len()];
        for d in (0..dims.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * dims[d + 1];
        }
        let data: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        unicode(&mut pkl, name);
        pkl.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n");
        pkl.push(b'(');
        // Persistent id: ("storage", FloatStorage, key, location, numel).
        pkl.push(b'(');
        unicode(&mut pkl, "storage");
        pkl.extend_from_slice(b"ctorch\nFloatStorage\n");
        unicode(&mut pkl, &i.to_string());
        unicode(&mut pkl, "cpu");
        int(&mut pkl, data.len());
        pkl.push(b't');
        pkl.push(b'Q');
        int(&mut pkl, 0);
        int_tuple(&mut pkl, &dims);
        int_tuple(&mut pkl, &stride);
        pkl.push(0x89);
        pkl.extend_from_slice(b"ccollections\nOrderedDict\n");
        pkl.push(b')');
        pkl.push(b'R');
        pkl.push(b't');
        pkl.push(b'R');
        storages.push(data);
    }
    pkl.push(b'u');
    if nested {
        pkl.push(b'u');
    }
    pkl.push(b'.');

    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    zip.write_all(&pkl).unwrap();
    for (i, data) in storages.iter().enumerate() {
        zip.start_file(format!("archive/data/{i}"), opts).unwrap();
        for v in data {
            zip.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    zip.finish().unwrap();
}
