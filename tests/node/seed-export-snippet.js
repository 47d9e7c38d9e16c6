const response = await fetch('/api/v1/jobs/export', {
  method: 'POST',
  headers: {
    'Authorization': `Bearer ${token}`,
    'Content-Type': 'application/json'
  },
  body: JSON.stringify({
    format: 'excel',
    filters: {
      status: ['completed'],
      startDate: '2024-01-01'
    },
    includeLogs: true
  })
});

const { url } = await response.json();
// Download from the returned URL
