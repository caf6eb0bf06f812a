import { ButtonLink, Card, EmptyState } from "../components/ui";

export function NotFoundPage() {
  return (
    <Card>
      <EmptyState title="Page not found">
        <p>There is nothing at this address.</p>
        <ButtonLink to="/" variant="secondary" className="mt-4">
          Back to your tasks
        </ButtonLink>
      </EmptyState>
    </Card>
  );
}
