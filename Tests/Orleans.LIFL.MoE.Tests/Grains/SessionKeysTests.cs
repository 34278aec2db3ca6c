using Orleans.LIFL.Grains;
using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

public sealed class SessionKeysTests
{
    private const string Silo = "127.0.0.1:11111@42";

    /// <summary>A session key gives back its request and incarnation, whether it names a silo (a resumed session) or not.</summary>
    [Fact]
    public void Session_keys_give_back_their_request_and_incarnation()
    {
        Assert.Equal("r-1#0", InferenceSessions.Key("r-1", 0));
        Assert.Equal("/127.0.0.1:11111@42/r-1#3", InferenceSessions.Key("r-1", 3, Silo));
        Assert.Equal(("r-1", 0), InferenceSessions.Parse(InferenceSessions.Key("r-1", 0)));
        Assert.Equal(("r-1", 3), InferenceSessions.Parse(InferenceSessions.Key("r-1", 3, Silo)));
        Assert.Throws<ArgumentException>(() => InferenceSessions.Parse("r-1"));
        Assert.Throws<ArgumentException>(() => InferenceSessions.Parse("/127.0.0.1:11111@42/r-1"));
    }

    /// <summary>
    /// A session whose key names a silo is found without the grain directory (the resumed one, after a failure); the
    /// first incarnation of a request is registered in it.
    /// </summary>
    [Fact]
    public void Only_a_session_key_naming_a_silo_does_without_the_directory()
    {
        var type = new GrainType("inferencesession");
        Assert.True(NamedSiloOrLocalPlacement.Singleton.UsesGrainDirectory(GrainId.Create(type, InferenceSessions.Key("r-1", 0))));
        Assert.False(NamedSiloOrLocalPlacement.Singleton.UsesGrainDirectory(GrainId.Create(type, InferenceSessions.Key("r-1", 1, Silo))));
    }

    /// <summary>A request id names its sessions, so one with '/' or '#' (or none) is refused, naming it.</summary>
    [Theory]
    [InlineData("a/b")]
    [InlineData("a#b")]
    [InlineData(" ")]
    public void Request_ids_that_cannot_name_a_session_are_refused(string requestId)
    {
        Assert.Contains($"RequestId '{requestId}'", GenerationRequest.RequestIdProblem(requestId), StringComparison.Ordinal);
        Assert.Null(GenerationRequest.RequestIdProblem("r-1"));
    }
}
