/// Every stage a manifest can name. Adding a stage: one file in Stages/ and one line here.
public enum StageRegistry {
    public static let all: [any Stage.Type] = [
        TileStage.self,
        MaskQCStage.self,
        PretrainStage.self,
        TrainClassifierStage.self,
        EvaluateStage.self,
        FeaturesStage.self,
        TrainMILStage.self,
        PredictMILStage.self,
        PredictStage.self,
        HeatmapStage.self,
        AggregateStage.self,
        ExportGeoJSONStage.self,
        ExportCLAMStage.self,
    ]

    public static func stage(kind: String) -> (any Stage.Type)? { all.first { $0.kind == kind } }
}
