using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;
using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// `serialize-messages = on` for our messages only. Akka.NET verifies every message of a system or none, and the
/// coordinator's system cannot run with it: Akka.Persistence.Sql sends itself a message holding a Task. These
/// mailboxes (the default one and the deque-based one that stashing actors such as the coordinator use) pass every
/// <see cref="INnUnetMessage"/> through the system's serializer on the way in and deliver the deserialized copy, so a
/// message that does not survive MessagePack fails the test even when both actors live in one process.
/// </summary>
public static class VerifyOurMessages
{
    public const string Hocon = """
        akka.actor.default-mailbox.mailbox-type = "NnUnet.Cluster.Tests.VerifyingMailbox, NnUnet.Cluster.Tests"
        akka.actor.mailbox.unbounded-deque-based.mailbox-type = "NnUnet.Cluster.Tests.VerifyingDequeMailbox, NnUnet.Cluster.Tests"
        """;

    public static Envelope RoundTrip(Envelope envelope, ActorSystem system)
    {
        if (envelope.Message is not INnUnetMessage message) return envelope;
        var serialization = system.Serialization;
        var serializer = serialization.FindSerializerFor(message);
        var bytes = serializer.ToBinary(message);
        var copy = serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, message));
        return new Envelope(copy, envelope.Sender);
    }
}

public sealed class VerifyingMessageQueue(ActorSystem system) : IMessageQueue, IUnboundedMessageQueueSemantics
{
    private readonly UnboundedMessageQueue _queue = new();
    public bool HasMessages => _queue.HasMessages;
    public int Count => _queue.Count;
    public void Enqueue(IActorRef receiver, Envelope envelope) => _queue.Enqueue(receiver, VerifyOurMessages.RoundTrip(envelope, system));
    public bool TryDequeue(out Envelope envelope) => _queue.TryDequeue(out envelope);
    public void CleanUp(IActorRef owner, IMessageQueue deadletters) => _queue.CleanUp(owner, deadletters);
}

public sealed class VerifyingDequeMessageQueue(ActorSystem system)
    : DequeWrapperMessageQueue(new VerifyingMessageQueue(system)), IUnboundedDequeBasedMessageQueueSemantics;

public sealed class VerifyingMailbox(Settings settings, Config config) : MailboxType(settings, config), IProducesMessageQueue<VerifyingMessageQueue>
{
    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new VerifyingMessageQueue(system);
}

public sealed class VerifyingDequeMailbox(Settings settings, Config config) : MailboxType(settings, config), IProducesMessageQueue<VerifyingDequeMessageQueue>
{
    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new VerifyingDequeMessageQueue(system);
}
