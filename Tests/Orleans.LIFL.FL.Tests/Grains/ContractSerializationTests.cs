using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Serialization;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Grains;

/// <summary>What FL grains exchange crosses process boundaries: every contract round trips through the wire format.</summary>
public sealed class ContractSerializationTests
{
    private static T RoundTrip<T>(T value) => LiflSerializer.Deserialize<T>(LiflSerializer.SerializeToArray(value));

    /// <summary>A definition, a status with history and every trainer-facing record come back equal.</summary>
    [Fact]
    public void Contracts_round_trip()
    {
        var definition = FlTestBed.Definition("fedadam") with
        {
            MaxUpdateNorm = 5,
            Settings = new AlgorithmSettings { DpClipNorm = 1.5, BufferSize = 4 },
            Training = new TrainingSettings { Epochs = 2, BatchSize = 8, LearningRate = 0.2 },
            MinAvailableClients = 6,
        };
        Assert.Equal(definition, RoundTrip(definition));

        var metrics = new RoundMetrics { Round = 2, ModelVersion = 2, Accepted = 5, Rejected = 1, RejectedByReason = new() { ["NonFinite"] = 1 }, Accuracy = 0.8 };
        var status = new JobStatus { JobId = "j", Revision = 9, Phase = JobPhase.Collecting, Round = 3, Selected = ["a", "b"], History = [metrics], Progress = 12 };
        var copy = RoundTrip(status);
        Assert.Equal(["a", "b"], copy.Selected);
        Assert.Equal(metrics.Accuracy, copy.History.Single().Accuracy);
        Assert.Equal(1, copy.History.Single().RejectedByReason["NonFinite"]);
        Assert.Equal((status.Revision, status.Progress, status.Round), (copy.Revision, copy.Progress, copy.Round));

        var task = new TrainerTask { Kind = TrainerTaskKind.Resend, Round = 3, Epoch = 1, UpdateId = "u", Training = definition.Training, ProximalMu = 0.1 };
        Assert.Equal(task, RoundTrip(task));
        var receipt = new UpdateReceipt("u", 3, 1, AlreadyAccepted: true, Staleness: 2);
        Assert.Equal(receipt, RoundTrip(receipt));
        var joined = new JoinedJob("j", "c", FlTestBed.TinyModel, "fedavg", definition.Training);
        Assert.Equal(joined, RoundTrip(joined));
    }

    /// <summary>A refusal keeps its reason across processes, since its message starts with it.</summary>
    [Fact]
    public void A_refusal_keeps_its_reason()
    {
        var rebuilt = new UpdateRejectedException(new UpdateRejectedException(RejectionReason.RoundClosed, "round 1 is closed").Message);
        Assert.Equal(RejectionReason.RoundClosed, rebuilt.Reason);
        Assert.Equal("RoundClosed: round 1 is closed", rebuilt.Message);
    }
}
