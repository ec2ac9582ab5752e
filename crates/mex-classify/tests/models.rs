#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Shapes, parameter counts and config validation of OFF-ApexNet and the shallow CNN; the
//! STSTNet input reader.

use candle_core::{DType, Device, Tensor};
use mex_classify::data::{composite_dataset_of, load_ststnet_inputs, read_bgr_image};
use mex_classify::{Error, Model, ModelConfig, OffApexNetConfig, ShallowCnnConfig, StstnetConfig};
use rand::SeedableRng;

fn shapes(cfg: &ModelConfig) {
    let (c, h, w) = cfg.input_shape();
    let mut m = Model::new(cfg, 1, &Device::Cpu).unwrap();
    let x = Tensor::rand(0f32, 1f32, (5, c, h, w), &Device::Cpu).unwrap();
    assert_eq!(m.forward_eval(&x).unwrap().dims(), &[5, cfg.num_classes()]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    assert_eq!(m.forward_train(&x, &mut rng).unwrap().dims(), &[5, cfg.num_classes()]);
    let p = m.predict_proba(&x).unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
    assert!(p.iter().all(|s| (s - 1.0).abs() < 1e-5));
    let bad = Tensor::zeros((1, c + 1, h, w), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(m.forward_eval(&bad), Err(Error::InputShape { .. })));
}

#[test]
fn off_apexnet_two_stream_has_the_published_2_66m_parameters() {
    // per stream: conv 1->6 (60) + conv 6->16 (880); fc 1568->1024, 1024->1024, 1024->3.
    let cfg = ModelConfig::OffApexNet(OffApexNetConfig::published());
    let want = 2 * (60 + 880) + (1568 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 3 + 3);
    assert_eq!(cfg.num_trainable(), want);
    assert_eq!(want, 2_661_211);
    shapes(&cfg);
}

#[test]
fn off_apexnet_merged_variant() {
    // conv 2->6 (114) + conv 6->16 (880); fc 784->1024, 1024->3.
    let cfg = ModelConfig::OffApexNet(OffApexNetConfig::merged());
    assert_eq!(cfg.num_trainable(), 114 + 880 + 784 * 1024 + 1024 + 1024 * 3 + 3);
    shapes(&cfg);
    // on STSTNet's 3-channel images (u, v channels chosen by index)
    shapes(&ModelConfig::OffApexNet(OffApexNetConfig {
        in_channels: 3,
        u_channel: 2,
        v_channel: 1,
        ..OffApexNetConfig::merged()
    }));
}

#[test]
fn shallow_cnn_presets() {
    shapes(&ModelConfig::ShallowCnn(ShallowCnnConfig::default()));
    let sss = ShallowCnnConfig::sssnet();
    // MEB SSSNet: 64 -> conv5 60 -> pool3 20 -> conv3 18 -> pool2 9; fc 9*9*64 -> 256 -> 3
    let want = (3 * 32 * 25 + 32) + 2 * 32 + (32 * 64 * 9 + 64) + 2 * 64 + (5184 * 256 + 256) + (256 * 3 + 3);
    assert_eq!(ModelConfig::ShallowCnn(sss.clone()).num_trainable(), want);
    shapes(&ModelConfig::ShallowCnn(sss));
}

#[test]
fn invalid_configs_are_typed_errors() {
    let bad = [
        ModelConfig::Ststnet(StstnetConfig { conv_padding: 3, ..StstnetConfig::default() }),
        ModelConfig::Ststnet(StstnetConfig { dropout: 1.0, ..StstnetConfig::default() }),
        ModelConfig::OffApexNet(OffApexNetConfig { input_size: 30, ..OffApexNetConfig::default() }),
        ModelConfig::OffApexNet(OffApexNetConfig { u_channel: 4, ..OffApexNetConfig::default() }),
        ModelConfig::ShallowCnn(ShallowCnnConfig { input_size: 2, ..ShallowCnnConfig::default() }),
        ModelConfig::ShallowCnn(ShallowCnnConfig { num_classes: 1, ..ShallowCnnConfig::default() }),
    ];
    for c in bad {
        assert!(matches!(Model::new(&c, 0, &Device::Cpu), Err(Error::InvalidParam { .. })), "{c:?}");
    }
}

#[test]
fn configs_round_trip_through_json() {
    for c in [
        ModelConfig::Ststnet(StstnetConfig::paper()),
        ModelConfig::OffApexNet(OffApexNetConfig::merged()),
        ModelConfig::ShallowCnn(ShallowCnnConfig::sssnet()),
    ] {
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ModelConfig>(&s).unwrap(), c);
    }
}

#[test]
fn png_reader_gives_bgr_planes_and_trims_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("inputs/sub01/u_test/2/sub01_EP01 .png");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(28, 28, |x, y| image::Rgb([10, (x + y) as u8, 250])).save(&p).unwrap();
    let v = read_bgr_image(&p, 28).unwrap();
    assert_eq!(v.len(), 3 * 784);
    assert_eq!(v[0], 250.0); // B plane first
    assert_eq!(v[784 + 28 + 3], 4.0); // G plane, (x 3, y 1)
    assert_eq!(v[2 * 784 + 100], 10.0); // R plane last
    let ds = load_ststnet_inputs(dir.path()).unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds.samples()[0].id, "sub01_EP01");
    assert_eq!(ds.samples()[0].label, 2);
    assert!(matches!(read_bgr_image(&p, 32), Err(Error::InputShape { .. })));
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"nope").unwrap();
    assert!(matches!(read_bgr_image(&junk, 28), Err(Error::Image { .. })));
    assert_eq!(composite_dataset_of("sub07"), "casme2");
    assert_eq!(composite_dataset_of("s12"), "smic");
    assert_eq!(composite_dataset_of("036"), "samm");
}
